from .attention import energy_pass_attention, in_energy_pass, math_attention
from .checkpointing import (
    DEFAULT_CHECKPOINT_BLOCKS,
    assert_no_reentrant_checkpointing,
    enable_activation_checkpointing,
)
from .compiled_input_gradient import CompilationError, CompiledInputGradient
from .energy_monitor import EnergyMonitor
from .energy_scaler import EnergyGradScaler, Fp16EnergyScaling, fp16_autocast_active
from .finite_checks import NonFiniteGuard
from .finite_difference import (
    FiniteDifferenceInputGradient,
    assert_smooth_energy,
    finite_difference_input_gradient,
)
from .input_gradient import (
    ExactInputGradient,
    InputGradient,
    build_input_gradient,
    exact_input_gradient,
)
from .saved_tensor_recompute import recompute_elementwise_saved_tensors
from .stepwise_backward import StepwiseBackward, StepwiseGradients

__all__ = [
    'energy_pass_attention',
    'in_energy_pass',
    'math_attention',
    'DEFAULT_CHECKPOINT_BLOCKS',
    'assert_no_reentrant_checkpointing',
    'enable_activation_checkpointing',
    'CompilationError',
    'CompiledInputGradient',
    'EnergyMonitor',
    'EnergyGradScaler',
    'Fp16EnergyScaling',
    'fp16_autocast_active',
    'NonFiniteGuard',
    'FiniteDifferenceInputGradient',
    'assert_smooth_energy',
    'finite_difference_input_gradient',
    'ExactInputGradient',
    'InputGradient',
    'build_input_gradient',
    'exact_input_gradient',
    'recompute_elementwise_saved_tensors',
    'StepwiseBackward',
    'StepwiseGradients',
]
