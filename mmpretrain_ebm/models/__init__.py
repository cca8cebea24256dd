"""Models of mmpretrain_ebm; importing registers them in mmpretrain's ``MODELS``."""

from .algorithms import EnergyRestorationAlgorithm
from .heads import EnergyHead
from .losses import SmoothL1Loss
from .utils import (
    EnergyGradScaler,
    ExactInputGradient,
    FiniteDifferenceInputGradient,
    InputGradient,
)

__all__ = [
    'EnergyRestorationAlgorithm',
    'EnergyHead',
    'SmoothL1Loss',
    'EnergyGradScaler',
    'InputGradient',
    'ExactInputGradient',
    'FiniteDifferenceInputGradient',
]
