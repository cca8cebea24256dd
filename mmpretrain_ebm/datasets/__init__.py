"""Data pipeline of mmpretrain_ebm; importing registers the corruption transforms."""

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
    'MixedCorruption',
    'RandomBoxMaskCorruption',
    'SuperResolutionCorruption',
]
