"""Data pipeline of mmpretrain_ebm; importing registers the corruption and loading transforms
and the ``ClassBalancedSplit`` dataset."""

from .class_balanced_split import class_balanced_split
from .loading import LoadImageFromFileOrSkip, UnreadableImagesError
from .transforms import (
    BaseCorruption,
    ColorizationCorruption,
    DenoisingCorruption,
    GridMaskCorruption,
    MixedCorruption,
    RandomBoxMaskCorruption,
    SuperResolutionCorruption,
)

__all__ = [
    'BaseCorruption',
    'ColorizationCorruption',
    'DenoisingCorruption',
    'GridMaskCorruption',
    'LoadImageFromFileOrSkip',
    'MixedCorruption',
    'RandomBoxMaskCorruption',
    'SuperResolutionCorruption',
    'UnreadableImagesError',
    'class_balanced_split',
]
