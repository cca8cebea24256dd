"""Finite-difference estimate of the second-order parameter gradient of a restoration step.

A step x_n = x - alpha * g(theta, x), g = dE/dx at x = SG(x_{n-1}), reaches theta only
through g. With u = dL/dg = -alpha * dL/dx_n the parameter gradient is the directional
derivative of grad_theta E along u in input space (mixed second derivatives commute):

    dL/dtheta = d/dtheta <dE/dx, u>
              = lim_{eps->0} (grad_theta E(x + eps u) - grad_theta E(x)) / eps

The forward computes E, dE/dx and grad_theta E(x) in one first-order backward; the backward
adds one forward and backward at x + eps u. Nothing is differentiated twice, so fused
attention kernels and ordinary checkpointing apply. alpha's gradient -<dE/dx, dL/dx_n> stays
exact (autograd of ``x - alpha * g``).

Step size: eps = rel_eps * max(||x||, sqrt(numel x)) / ||u||, i.e. the perturbation's RMS per
pixel is ``rel_eps`` times the RMS of x (at least ``rel_eps`` in normalized pixel units).
Both energy passes run in full float32: autocast and TF32 are switched off inside them,
because a one-sided difference of relative size 1e-4 is below bf16/fp16/TF32 resolution.
The perturbed pass replays the random state of the first one (dropout, drop path) and leaves
BatchNorm running statistics untouched.

The accuracy measured on tiny models is in docs/performance.md; in float32, rel_eps
between 3e-5 and 3e-4 balances truncation against rounding. Limits:

- The energy must be smooth: piecewise-linear layers (ReLU, max pooling) are refused by
  :func:`assert_smooth_energy`, because autograd's second derivative drops the kinks' Dirac
  terms that a difference picks up.
- It must also be smooth on the scale of the perturbation. A LayerNorm of an all-zero
  channel vector is not: with mmpretrain's zero conv-bias init, ConvNeXt maps mean-filled
  masked cells (0 after normalization) to such vectors in every LayerNorm, and the estimate
  is wrong; ``configs/_base_/models/ebm_convnext-tiny.py`` therefore initializes the conv
  biases randomly. ViT (position embeddings) and Swin are not affected.
- With train-mode BatchNorm the batch statistics are part of E, as in the exact mode.
"""

import math
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence, Tuple

import torch
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from .batchnorm import frozen_batchnorm_statistics
from .input_gradient import InputGradient, energy_module

EnergyFn = Callable[[Tensor], Tensor]

#: Relative size of the input perturbation (one-sided difference in float32).
DEFAULT_REL_EPS = 1e-4

#: Piecewise-linear layers. Their second derivative has Dirac terms at the kinks: a finite
#: difference picks them up while autograd's exact mode drops them, so the two disagree.
NON_SMOOTH_LAYERS = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)


def assert_smooth_energy(module: nn.Module) -> None:
    """Refuse energies with piecewise-linear layers (ReLU, max pooling, ...) for
    ``grad_mode='finite_difference'``."""
    offenders = [
        f'{name} ({type(sub).__name__})'
        for name, sub in module.named_modules()
        if isinstance(sub, NON_SMOOTH_LAYERS)
    ]
    if offenders:
        more = f' and {len(offenders) - 3} more' if len(offenders) > 3 else ''
        raise ValueError(
            "grad_mode='finite_difference' needs a smooth energy (GELU/SiLU/tanh networks "
            f'such as ViT, Swin, ConvNeXt), but {", ".join(offenders[:3])}{more} are '
            'piecewise linear: the finite difference of their gradient does not estimate '
            "autograd's second derivative. Use grad_mode='exact'."
        )


@contextmanager
def full_precision(device_type: str) -> Iterator[None]:
    """Autocast off, and on CUDA no TF32 in matmuls and convolutions.

    torch >= 2.9 has ``fp32_precision`` flags; once a user sets them, reading the legacy
    ``allow_tf32`` raises, so the new flags are used where they exist.
    """
    flags = []
    if device_type == 'cuda':
        matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
        if hasattr(matmul, 'fp32_precision'):
            flags = [(matmul, 'fp32_precision', 'ieee'), (cudnn.conv, 'fp32_precision', 'ieee')]
        else:
            flags = [(matmul, 'allow_tf32', False), (cudnn, 'allow_tf32', False)]
    saved = [getattr(owner, name) for owner, name, _ in flags]
    for owner, name, off in flags:
        setattr(owner, name, off)
    try:
        with torch.autocast(device_type, enabled=False):
            yield
    finally:
        for (owner, name, _), value in zip(flags, saved):
            setattr(owner, name, value)


class _RandomState:
    """CPU and (if used) CUDA generator states, replayed for the perturbed pass."""

    def __init__(self, device: torch.device) -> None:
        self.device = device if device.type == 'cuda' else None
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if self.device is not None else None

    @contextmanager
    def replayed(self) -> Iterator[None]:
        devices = [self.device] if self.device is not None else []
        with torch.random.fork_rng(devices=devices, device_type='cuda'):
            torch.set_rng_state(self.cpu)
            if self.device is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            yield


def _energy_and_gradients(
    energy_fn: EnergyFn, x: Tensor, params: Sequence[Tensor], input_grad: bool = True
) -> Tuple[Tensor, Tuple[Optional[Tensor], ...]]:
    """E(x) [B] and the gradients of sum(E) w.r.t. (x, *params) by one first-order backward;
    with ``input_grad=False`` the first entry is ``None`` and the input-layer backward is
    skipped (the perturbed pass needs parameter gradients only)."""
    x = x.detach().requires_grad_(input_grad)
    with torch.enable_grad(), full_precision(x.device.type):
        energy = energy_fn(x)
        grads = torch.autograd.grad(
            energy.sum(), [x, *params] if input_grad else list(params), allow_unused=True
        )
    return energy.detach(), (tuple(grads) if input_grad else (None, *grads))


class _FiniteDifferenceInputGradient(torch.autograd.Function):
    """(E [B], dE/dx); the backward turns the incoming u = dL/d(dE/dx) into the parameter
    gradients (grad_theta E(x + eps u) - grad_theta E(x)) / eps."""

    @staticmethod
    def forward(
        ctx, energy_fn: EnergyFn, module: nn.Module, rel_eps: float, x: Tensor, *params: Tensor
    ) -> Tuple[Tensor, Tensor]:
        ctx.random_state = _RandomState(x.device)
        energy, (input_grad, *param_grads) = _energy_and_gradients(energy_fn, x, params)
        ctx.energy_fn, ctx.module, ctx.rel_eps = energy_fn, module, rel_eps
        ctx.num_params = len(params)
        ctx.save_for_backward(x, *params, *param_grads)
        ctx.mark_non_differentiable(energy)
        return energy, input_grad

    @staticmethod
    def backward(ctx, _: Tensor, direction: Tensor) -> tuple:
        x, *rest = ctx.saved_tensors
        params, base_grads = rest[: ctx.num_params], rest[ctx.num_params :]
        used = [p for p, g in zip(params, base_grads) if g is not None]
        direction_norm = direction.float().norm().item()
        if not used or direction_norm == 0.0:
            grads = [None if g is None else torch.zeros_like(g) for g in base_grads]
            return (None, None, None, None, *grads)
        pixel_scale = max(x.float().norm().item(), math.sqrt(x.numel()))
        eps = ctx.rel_eps * pixel_scale / direction_norm
        with ctx.random_state.replayed(), frozen_batchnorm_statistics(ctx.module):
            _, (_, *moved_grads) = _energy_and_gradients(
                ctx.energy_fn, x + eps * direction.to(x.dtype), used, input_grad=False
            )
        moved = iter(moved_grads)
        grads = [
            None if base is None else _difference(next(moved), base, eps) for base in base_grads
        ]
        return (None, None, None, None, *grads)


def _difference(moved: Optional[Tensor], base: Tensor, eps: float) -> Tensor:
    """(moved - base) / eps, in place in ``moved`` (a fresh gradient of the perturbed pass)."""
    return torch.zeros_like(base) if moved is None else moved.sub_(base).div_(eps)


def finite_difference_input_gradient(
    energy_fn: EnergyFn, x: Tensor, create_graph: bool, rel_eps: float = DEFAULT_REL_EPS
) -> Tuple[Tensor, Tensor]:
    """Energies [B] and dE/dx (like x) with a finite-difference second-order path.

    With ``create_graph=True`` the returned dE/dx is differentiable w.r.t. the parameters of
    ``energy_fn``'s module (see the module docstring); with ``False`` it is a plain
    first-order gradient.
    """
    if not create_graph:
        energy, (grad,) = _energy_and_gradients(energy_fn, x, ())
        return energy, grad
    module = energy_module(energy_fn)
    params = [p for p in module.parameters() if p.requires_grad]
    return _FiniteDifferenceInputGradient.apply(energy_fn, module, rel_eps, x, *params)


@MODELS.register_module()
class FiniteDifferenceInputGradient(InputGradient):
    """The second-order path by finite differences (``'finite_difference'``; module docstring).

    No fp16 energy scale is needed: both passes run in float32.

    Args:
        rel_eps: Perturbation RMS per pixel relative to the RMS of x (> 0).
    """

    def __init__(self, rel_eps: float = DEFAULT_REL_EPS) -> None:
        if isinstance(rel_eps, bool) or not isinstance(rel_eps, (int, float)) or not rel_eps > 0:
            raise ValueError(f'rel_eps must be a number > 0, got {rel_eps!r}')
        self.rel_eps = float(rel_eps)

    def __call__(self, energy_fn: EnergyFn, x: Tensor, create_graph: bool) -> Tuple[Tensor, Tensor]:
        return finite_difference_input_gradient(energy_fn, x, create_graph, self.rel_eps)

    def check_energy(self, module: nn.Module) -> None:
        assert_smooth_energy(module)
