"""One restoration step of the energy chain (paper Eq. 3-4, Algorithm 1 lines 8-9).

    x_n = SG(x_{n-1}) - alpha * dE/dx |_{x = SG(x_{n-1})}

This is the single implementation that training (:class:`EnergyRestorationAlgorithm`),
inference (``restore``) and benchmarks call, so what is timed is what trains.
"""

from contextlib import nullcontext
from typing import Callable, Dict, NamedTuple

import torch
from torch import Tensor

from .attention import energy_pass_attention
from .finite_difference import finite_difference_input_gradient
from .saved_tensor_recompute import recompute_elementwise_saved_tensors

EnergyFn = Callable[[Tensor], Tensor]
#: ``(energy_fn, x, create_graph, energy_scale) -> (energies [B], dE/dx like x)``
InputGradientFn = Callable[[EnergyFn, Tensor, bool, float], 'tuple[Tensor, Tensor]']


class RestorationStep(NamedTuple):
    """Result of one step: the moved images, the energies and input gradient at the start."""

    x: Tensor  #: x_n, [B, C, H, W]; differentiable w.r.t. parameters and alpha.
    energy: Tensor  #: E(SG(x_{n-1})), [B], float32.
    grad: Tensor  #: dE/dx at SG(x_{n-1}), like x.


def exact_input_gradient(
    energy_fn: EnergyFn, x: Tensor, create_graph: bool, energy_scale: float
) -> 'tuple[Tensor, Tensor]':
    """Energies and the exact ``dE/dx`` by autograd.

    Each image's energy depends only on its own pixels (the batch dimension is independent
    for the LayerNorm/GroupNorm backbones; with train-mode BatchNorm the images are coupled,
    exactly as in Listing 1), so ``d(sum_i E_i)/dx`` gives every image its own gradient.
    ``create_graph=True`` keeps the graph of the gradient: the parameters learn only through
    this second-order path. ``energy_scale`` multiplies the energy before differentiation and
    divides the gradient after it (fp16 underflow protection; 1.0 leaves it unchanged).
    """
    energy = energy_fn(x)
    objective = energy.sum() if energy_scale == 1.0 else energy.sum() * energy_scale
    (grad,) = torch.autograd.grad(objective, x, create_graph=create_graph)
    if energy_scale != 1.0:
        grad = grad.float() / energy_scale
    return energy, grad


INPUT_GRADIENT_MODES: Dict[str, InputGradientFn] = {
    'exact': exact_input_gradient,
    'finite_difference': finite_difference_input_gradient,
}
#: Modes that differentiate dE/dx again: their energy passes need math attention.
DOUBLE_BACKWARD_MODES = ('exact',)


def restoration_step(
    energy_fn: EnergyFn,
    x_prev: Tensor,
    alpha: Tensor,
    grad_mode: str = 'exact',
    create_graph: bool = True,
    energy_scale: float = 1.0,
    recompute_elementwise: bool = True,
) -> RestorationStep:
    """Take one energy-descent step from ``SG(x_prev)``.

    Args:
        energy_fn: Maps images [B, C, H, W] to energies [B].
        x_prev: x_{n-1}; it is detached here (the stop gradient between steps).
        alpha: Step size, a scalar tensor (learnable or not).
        grad_mode: How ``dE/dx`` and its parameter gradient are computed; a key of
            :data:`INPUT_GRADIENT_MODES`: ``'exact'`` (double backward) or
            ``'finite_difference'`` (first-order passes only, see :mod:`.finite_difference`).
        create_graph: Keep the graph of ``dE/dx`` for the second-order parameter gradient.
            Training needs ``True``; inference may use ``False`` to save memory.
        energy_scale: Multiplier for the energy before the inner gradient (fp16).
        recompute_elementwise: With ``create_graph`` in a double-backward mode, keep cheap
            elementwise results out of the graph and recompute them when needed
            (bit-identical gradients, less memory; see :mod:`.saved_tensor_recompute`).

    Returns:
        :class:`RestorationStep` with x_n, the energies and the input gradient.
    """
    if grad_mode not in INPUT_GRADIENT_MODES:
        raise ValueError(
            f'grad_mode must be one of {tuple(INPUT_GRADIENT_MODES)}, got {grad_mode!r}'
        )
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            'a restoration step cannot run under torch.inference_mode(): it '
            'computes dE/dx, which needs autograd; use torch.no_grad() or no '
            'context (gradients are enabled inside the step)'
        )
    x = x_prev.detach().requires_grad_(True)
    double_backward = grad_mode in DOUBLE_BACKWARD_MODES
    # only a graph that is differentiated again needs the math attention backend
    attention = energy_pass_attention() if double_backward and create_graph else nullcontext()
    lean_graph = recompute_elementwise_saved_tensors(
        enabled=recompute_elementwise and double_backward and create_graph
    )
    with torch.enable_grad(), attention, lean_graph:
        energy, grad = INPUT_GRADIENT_MODES[grad_mode](energy_fn, x, create_graph, energy_scale)
        x_next = x - alpha * grad
    return RestorationStep(x_next, energy, grad)
