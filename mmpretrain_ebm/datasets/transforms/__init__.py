"""Corruption transforms: x~0 = corrupt(x), the pretext tasks of the paper (Sec. 2.2, 3.1)."""

from .base import IMAGENET_MEAN, IMAGENET_STD, BaseCorruption
from .masking import RANDOM_BOX_PRESETS, GridMaskCorruption, RandomBoxMaskCorruption
from .mixing import MixedCorruption, registered_corruptions
from .restoration import (
    ColorizationCorruption,
    DenoisingCorruption,
    SuperResolutionCorruption,
    bicubic_downsample_matrix,
)
from .sorting import PatchSortingCorruption

__all__ = [
    'IMAGENET_MEAN',
    'IMAGENET_STD',
    'BaseCorruption',
    'RANDOM_BOX_PRESETS',
    'GridMaskCorruption',
    'RandomBoxMaskCorruption',
    'MixedCorruption',
    'registered_corruptions',
    'ColorizationCorruption',
    'DenoisingCorruption',
    'SuperResolutionCorruption',
    'bicubic_downsample_matrix',
    'PatchSortingCorruption',
]
