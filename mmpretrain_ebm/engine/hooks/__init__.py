"""Training hooks."""

from .restoration_visualization_hook import RestorationVisualizationHook

__all__ = ['RestorationVisualizationHook']
