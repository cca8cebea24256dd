"""Input-gradient estimators: dE/dx of a restoration step and its second-order path.

A restoration step (Eq. 4) needs ``g = dE/dx`` at ``x = SG(x_{n-1})`` and, in training, the
derivative of the loss through ``g`` with respect to the parameters. An estimator computes
``(E(x) [B], g like x)`` from an energy function and a leaf ``x``; with ``create_graph=True``
its ``g`` must carry that second-order path. The algorithm picks one from its config
(``grad_mode``), so a new estimator is one class registered in ``MODELS``:

- :class:`ExactInputGradient` (``'exact'``): double backward, as the paper;
- :class:`~.finite_difference.FiniteDifferenceInputGradient` (``'finite_difference'``): the
  second-order term from two first-order passes;
- :class:`~.compiled_input_gradient.CompiledInputGradient` (``'compiled'``): the exact
  gradients from one ``torch.compile``-d graph (:mod:`.compiled_input_gradient`).
"""

from typing import Callable, Optional, Tuple

import torch
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from .attention import energy_pass_attention
from .energy_scaler import EnergyGradScaler, Fp16EnergyScaling, fp16_autocast_active
from .saved_tensor_recompute import recompute_elementwise_saved_tensors

EnergyFn = Callable[[Tensor], Tensor]


class InputGradient:
    """Base class: ``estimator(energy_fn, x, create_graph) -> (E(x) [B], dE/dx like x)``.

    ``x`` is a leaf that requires grad; gradients are enabled inside. ``energy_fn`` maps
    images [B, C, H, W] to energies [B]; ``dE/dx`` is the gradient of their sum.
    """

    #: Whether the backbone's blocks may be activation-checkpointed (``grad_checkpoint``).
    supports_activation_checkpointing = True

    def __call__(self, energy_fn: EnergyFn, x: Tensor, create_graph: bool) -> Tuple[Tensor, Tensor]:
        raise NotImplementedError

    def check_energy(self, module: nn.Module) -> None:
        """Refuse, with a clear error, an energy module this estimator cannot serve."""

    @property
    def scaler(self) -> Optional[EnergyGradScaler]:
        """Dynamic fp16 state to save in checkpoints, if the estimator has one."""
        return None

    def describe_precision(self, device_type: str) -> str:
        """A note for error messages about the numeric setting in use ('' if nothing)."""
        return ''


def exact_input_gradient(
    energy_fn: EnergyFn, x: Tensor, create_graph: bool, energy_scale: float = 1.0
) -> Tuple[Tensor, Tensor]:
    """Energies [B] and the exact ``dE/dx`` of their sum, by autograd.

    Each image's energy depends only on its own pixels (with train-mode BatchNorm the images
    are coupled, as in Listing 1), so ``d(sum_i E_i)/dx`` gives every image its own gradient.
    ``energy_scale`` multiplies the energy before differentiation and divides the gradient
    after it (fp16 underflow protection; 1.0 leaves both unchanged).
    """
    energy = energy_fn(x)
    objective = energy.sum() if energy_scale == 1.0 else energy.sum() * energy_scale
    (grad,) = torch.autograd.grad(objective, x, create_graph=create_graph)
    if energy_scale != 1.0:
        grad = grad.float() / energy_scale
    return energy, grad


@MODELS.register_module()
class ExactInputGradient(InputGradient):
    """Exact double backward (``'exact'``, the paper's).

    With ``create_graph`` the energy pass runs on the math attention backend (the fused
    kernels have no second derivative) and, if ``recompute_elementwise``, keeps cheap
    elementwise results out of the graph (:mod:`.saved_tensor_recompute`). Under fp16
    autocast the energy is scaled dynamically before the inner gradient, retried at a smaller
    scale on overflow (:class:`~.energy_scaler.Fp16EnergyScaling`).

    Args:
        recompute_elementwise: Recompute GELU and GELU/softmax-backward results on unpack
            instead of saving them (bit-identical gradients, less memory).
        energy_scaler: Keyword arguments of :class:`~.energy_scaler.EnergyGradScaler`.
    """

    def __init__(self, recompute_elementwise: bool = True, energy_scaler: Optional[dict] = None):
        if not isinstance(recompute_elementwise, bool):
            raise TypeError(
                f'recompute_elementwise must be True or False, got {recompute_elementwise!r}'
            )
        if energy_scaler is not None and not isinstance(energy_scaler, dict):
            raise TypeError(
                'energy_scaler must be a dict of EnergyGradScaler arguments or None, '
                f'got {energy_scaler!r}'
            )
        self.recompute_elementwise = recompute_elementwise
        self.fp16 = Fp16EnergyScaling(EnergyGradScaler(**(energy_scaler or {})))

    @property
    def scaler(self) -> EnergyGradScaler:
        return self.fp16.scaler

    def __call__(self, energy_fn: EnergyFn, x: Tensor, create_graph: bool) -> Tuple[Tensor, Tensor]:
        if not create_graph:  # no second derivative: fused attention, nothing to recompute
            return self._scaled(energy_fn, x, create_graph)
        lean_graph = recompute_elementwise_saved_tensors(enabled=self.recompute_elementwise)
        with energy_pass_attention(), lean_graph:
            return self._scaled(energy_fn, x, create_graph)

    def _scaled(self, energy_fn: EnergyFn, x: Tensor, create_graph: bool) -> Tuple[Tensor, Tensor]:
        with torch.enable_grad():
            if not fp16_autocast_active(x.device.type):
                return exact_input_gradient(energy_fn, x, create_graph)
            return self.fp16(
                lambda scale: exact_input_gradient(energy_fn, x, create_graph, scale),
                energy_module(energy_fn),
            )

    def describe_precision(self, device_type: str) -> str:
        if not fp16_autocast_active(device_type):
            return ''
        return f' (fp16 energy scale {self.scaler.scale})'


def energy_module(energy_fn: EnergyFn) -> nn.Module:
    """The module whose parameters ``energy_fn`` uses: itself or the owner of a bound method."""
    module = energy_fn if isinstance(energy_fn, nn.Module) else getattr(energy_fn, '__self__', None)
    if not isinstance(module, nn.Module):
        raise TypeError(
            'an input-gradient estimator needs an energy function that is an nn.Module or a '
            f'bound method of one (to find its parameters and BatchNorm layers), got {energy_fn!r}'
        )
    return module


#: ``grad_mode`` names and the estimator configs they stand for.
GRAD_MODES = {
    'exact': 'ExactInputGradient',
    'finite_difference': 'FiniteDifferenceInputGradient',
    'compiled': 'CompiledInputGradient',
}


def build_input_gradient(
    grad_mode, recompute_elementwise: bool = True, energy_scaler: Optional[dict] = None
) -> InputGradient:
    """An estimator from ``grad_mode``: a name of :data:`GRAD_MODES` or a config dict
    (``dict(type='FiniteDifferenceInputGradient', rel_eps=1e-4)``). The two keyword arguments
    configure the exact mode given by name, and are ignored by the other estimators."""
    if isinstance(grad_mode, dict):
        cfg = dict(grad_mode)
    elif grad_mode in GRAD_MODES:
        cfg = dict(type=GRAD_MODES[grad_mode])
        if grad_mode == 'exact':
            cfg.update(recompute_elementwise=recompute_elementwise, energy_scaler=energy_scaler)
    else:
        raise ValueError(
            f'grad_mode must be one of {tuple(GRAD_MODES)} or an estimator config dict '
            f"(e.g. dict(type='ExactInputGradient')), got {grad_mode!r}"
        )
    estimator = MODELS.build(cfg)
    if not isinstance(estimator, InputGradient):
        raise TypeError(
            f'grad_mode {grad_mode!r} built {type(estimator).__name__}, which is not an '
            'InputGradient estimator'
        )
    return estimator
