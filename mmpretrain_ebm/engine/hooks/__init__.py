"""Training hooks."""

from .initial_step_size_hook import InitialStepSizeHook
from .restoration_visualization_hook import RestorationVisualizationHook

__all__ = ['InitialStepSizeHook', 'RestorationVisualizationHook']
