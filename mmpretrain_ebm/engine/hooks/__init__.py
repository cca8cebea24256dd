"""Training hooks."""

from .initial_step_size_hook import InitialStepSizeHook
from .knn_evaluation_hook import KNNEvaluationHook
from .restoration_visualization_hook import RestorationVisualizationHook

__all__ = ['InitialStepSizeHook', 'KNNEvaluationHook', 'RestorationVisualizationHook']
