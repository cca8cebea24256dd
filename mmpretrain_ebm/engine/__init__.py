"""Engine components: hooks and optimizer wrappers, registered in mmpretrain's registries."""

from .hooks import KNNEvaluationHook, RestorationVisualizationHook
from .optimizers import EnergyAmpOptimWrapper

__all__ = ['KNNEvaluationHook', 'RestorationVisualizationHook', 'EnergyAmpOptimWrapper']
