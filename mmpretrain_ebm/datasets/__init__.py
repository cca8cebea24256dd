"""Data pipeline of mmpretrain_ebm; importing registers the corruption and loading transforms."""

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
]
