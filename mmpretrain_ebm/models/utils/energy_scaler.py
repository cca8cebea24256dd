"""Scaling of the energy before the inner gradient under fp16 autocast.

Under fp16 the backward pass that builds ``dE/dx`` carries small per-pixel gradients that
can underflow in half precision. Following PyTorch's
gradient-penalty recipe for AMP, the energy is multiplied by ``scale`` before
``autograd.grad`` and the input gradient is divided by it afterwards (in float32), so the
step itself is unchanged. When the scaled gradient overflows, the scale halves and the step is
recomputed; after ``growth_interval`` overflow-free steps it doubles again, up to
``max_scale``. bf16 and fp32 have float32's range and use no scaling.

The division by ``scale`` also lies on the second-order path: there the outer loss scale S
of ``AmpOptimWrapper`` (mmengine's dynamic ``GradScaler``, 2**16 at start) is effectively
S / scale. The defaults therefore keep ``scale`` moderate (2**8): enough for the first-order
pass, while S / scale stays large for the second-order one.
"""

from contextlib import nullcontext
from typing import Callable, Dict, Tuple

import torch
from mmengine.dist import all_reduce
from torch import Tensor, nn

from .batchnorm import RunningStatisticsKept


class EnergyGradScaler:
    """Dynamic loss-scale state for the inner (input) gradient of the energy.

    Args:
        init_scale: Initial scale; must stay below fp16's maximum (65504) because the
            gradient of the summed energy reaches every per-image energy as ``scale``.
        growth_factor: Factor applied after ``growth_interval`` overflow-free steps.
        backoff_factor: Factor applied when the scaled gradient overflows.
        growth_interval: Overflow-free steps before growing.
        min_scale: Smallest scale; an overflow at this scale is a real non-finite value.
        max_scale: Largest scale the growth may reach.
    """

    def __init__(
        self,
        init_scale: float = 2.0**8,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 1000,
        min_scale: float = 1.0,
        max_scale: float = 2.0**8,
    ) -> None:
        if not min_scale > 0 or not init_scale > 0:
            raise ValueError(
                'EnergyGradScaler needs init_scale > 0 and min_scale > 0 (a zero '
                f'or negative scale destroys the gradient), got init_scale='
                f'{init_scale!r}, min_scale={min_scale!r}'
            )
        if not min_scale <= init_scale <= max_scale:
            raise ValueError(
                f'need min_scale <= init_scale <= max_scale, got {min_scale}, '
                f'{init_scale}, {max_scale}'
            )
        if growth_factor <= 1.0 or not 0.0 < backoff_factor < 1.0:
            raise ValueError(
                'need growth_factor > 1 and 0 < backoff_factor < 1, got '
                f'{growth_factor} and {backoff_factor}'
            )
        if growth_interval < 1:
            raise ValueError(f'growth_interval must be >= 1, got {growth_interval}')
        self.scale = float(init_scale)
        self.growth_factor = growth_factor
        self.backoff_factor = backoff_factor
        self.growth_interval = growth_interval
        self.min_scale = min_scale
        self.max_scale = max_scale
        self._good_steps = 0

    def state_dict(self) -> Dict[str, float]:
        """The dynamic state (scale and clean-step count), for checkpoints."""
        return {'scale': self.scale, 'good_steps': self._good_steps}

    def load_state_dict(self, state: Dict[str, float]) -> None:
        """Restore :meth:`state_dict`'s output; the scale is clipped to this scaler's range."""
        if not isinstance(state, dict) or set(state) != {'scale', 'good_steps'}:
            raise ValueError(
                "EnergyGradScaler state must be {'scale': float, 'good_steps': "
                f'int}}, got {state!r}'
            )
        self.scale = min(max(float(state['scale']), self.min_scale), self.max_scale)
        self._good_steps = int(state['good_steps'])

    @property
    def can_back_off(self) -> bool:
        """Whether an overflow can still be retried at a smaller scale."""
        return self.scale > self.min_scale

    def update(self, found_inf: bool) -> None:
        """Back off after an overflow; grow after ``growth_interval`` clean steps."""
        if found_inf:
            self.scale = max(self.scale * self.backoff_factor, self.min_scale)
            self._good_steps = 0
            return
        self._good_steps += 1
        if self._good_steps >= self.growth_interval:
            self.scale = min(self.scale * self.growth_factor, self.max_scale)
            self._good_steps = 0


class Fp16EnergyScaling:
    """Run an input-gradient computation at the scaler's scale, retrying while it overflows.

    ``scaling(compute, module)`` calls ``compute(scale) -> (energies [B], dE/dx)``. When the
    energies are finite but the gradient is not, the scale backs off and the computation is
    repeated, with ``module``'s BatchNorm running statistics left as the first pass set them;
    under torch.distributed all ranks decide together (SyncBN forwards are collectives). A
    non-finite result at the smallest scale is returned as it is, for the caller's checks.
    """

    def __init__(self, scaler: EnergyGradScaler) -> None:
        self.scaler = scaler

    def __call__(
        self, compute: Callable[[float], Tuple[Tensor, Tensor]], module: nn.Module
    ) -> Tuple[Tensor, Tensor]:
        retry = False
        while True:
            with RunningStatisticsKept(module) if retry else nullcontext():
                energy, grad = compute(self.scaler.scale)
            overflow = any_rank(torch.isfinite(energy).all() & ~torch.isfinite(grad).all())
            if overflow and self.scaler.can_back_off:
                self.scaler.update(found_inf=True)
                retry = True
                continue
            if not overflow:
                self.scaler.update(found_inf=False)
            return energy, grad


def fp16_autocast_active(device_type: str) -> bool:
    """Whether autocast to float16 is enabled for ``device_type`` in the calling thread."""
    return (
        torch.is_autocast_enabled(device_type)
        and torch.get_autocast_dtype(device_type) == torch.float16
    )


def any_rank(flag: Tensor) -> bool:
    """Whether the boolean scalar ``flag`` is true on any rank (all-reduced under
    torch.distributed, so every rank takes the same decision; the local value otherwise)."""
    flag = flag.to(torch.int32)
    all_reduce(flag, op='max')
    return bool(flag)


#: Rows of the ``_extra_state`` tensor that checkpoints held before the scales moved out of
#: the model's state dict, as names of ``EnergyRestorationAlgorithm.fp16_scalers()``.
LEGACY_SCALER_ROWS = ('energy', 'step_loss')


def load_legacy_scaler_state(module: nn.Module, state_dict: dict, prefix: str, *_) -> None:
    """Load-state-dict pre-hook: an older checkpoint's ``_extra_state`` (float64 [2, 2], a
    row (scale, clean steps) per :data:`LEGACY_SCALER_ROWS`) goes into the module's scalers
    and leaves the state dict, so such checkpoints still load strictly."""
    state = state_dict.pop(prefix + '_extra_state', None)
    if state is None:
        return
    if not isinstance(state, Tensor) or state.shape != (len(LEGACY_SCALER_ROWS), 2):
        raise ValueError(
            f'_extra_state of {type(module).__name__} (the fp16 scales of older checkpoints) '
            f'must be a tensor [{len(LEGACY_SCALER_ROWS)}, 2] of (scale, clean steps) for '
            f'{LEGACY_SCALER_ROWS}, got {state!r}'
        )
    scalers = module.fp16_scalers()
    for name, (scale, good_steps) in zip(LEGACY_SCALER_ROWS, state.tolist()):
        if name in scalers:
            scalers[name].load_state_dict({'scale': scale, 'good_steps': good_steps})
