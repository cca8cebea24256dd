from .attention import energy_pass_attention, in_energy_pass, math_attention
from .checkpointing import (
    DEFAULT_CHECKPOINT_BLOCKS,
    assert_no_reentrant_checkpointing,
    enable_activation_checkpointing,
)
from .energy_scaler import EnergyGradScaler, fp16_autocast_active
from .finite_difference import assert_smooth_energy, finite_difference_input_gradient
from .restoration_step import (
    INPUT_GRADIENT_MODES,
    RestorationStep,
    exact_input_gradient,
    restoration_step,
)
from .saved_tensor_recompute import recompute_elementwise_saved_tensors
from .stepwise_backward import StepwiseGradients

__all__ = [
    'energy_pass_attention',
    'in_energy_pass',
    'math_attention',
    'DEFAULT_CHECKPOINT_BLOCKS',
    'assert_no_reentrant_checkpointing',
    'enable_activation_checkpointing',
    'EnergyGradScaler',
    'fp16_autocast_active',
    'INPUT_GRADIENT_MODES',
    'RestorationStep',
    'exact_input_gradient',
    'restoration_step',
    'assert_smooth_energy',
    'finite_difference_input_gradient',
    'recompute_elementwise_saved_tensors',
    'StepwiseGradients',
]
