"""Engine components: hooks registered in mmpretrain's ``HOOKS``."""

from .hooks import RestorationVisualizationHook

__all__ = ['RestorationVisualizationHook']
