"""Models of mmpretrain_ebm; importing registers them in mmpretrain's ``MODELS``."""

from .algorithms import EnergyRestorationAlgorithm
from .heads import EnergyHead
from .losses import SmoothL1Loss
from .utils import EnergyGradScaler, restoration_step

__all__ = [
    'EnergyRestorationAlgorithm',
    'EnergyHead',
    'SmoothL1Loss',
    'EnergyGradScaler',
    'restoration_step',
]
