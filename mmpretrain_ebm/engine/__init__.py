"""Engine components: hooks and optimizer wrappers, registered in mmpretrain's registries."""

from .hooks import RestorationVisualizationHook
from .optimizers import EnergyAmpOptimWrapper

__all__ = ['RestorationVisualizationHook', 'EnergyAmpOptimWrapper']
