"""Backpropagate each restoration step as soon as its loss exists.

The steps of Eq. 4 are independent once x is detached between them, so the double-backward
graph of step n is not needed after its loss term has been differentiated. Keeping every
step's graph until one final ``loss.backward()`` (Listing 1) holds N graphs at once; this
module holds one.

For steps 1..N-1 :meth:`StepwiseGradients.backward_now` takes the parameter gradients at
once with ``torch.autograd.grad``: no ``.grad`` is written and no DDP hook fires, and the
graph is freed. The sum, kept in float32 (float64 for float64 parameters), re-enters the one
backward that mmengine runs through :meth:`StepwiseGradients.surrogate`: a zero-valued scalar
added to the last step's loss whose gradient w.r.t. each parameter is the accumulated sum
times the incoming gradient. So the training gradient is unchanged, and AMP loss scaling,
gradient accumulation (``accumulative_counts``) and DDP's single all-reduce see an ordinary
backward.

Under fp16 autocast the early steps are scaled like the outer loss (dynamic scale, backing off
on overflow). A non-finite gradient is passed on, so ``AmpOptimWrapper`` skips the update as
it would for the outer backward. Otherwise :attr:`StepwiseGradients.finite` records, without
a host sync, whether each early step's gradients were finite, for the caller to check before
the optimizer step.
"""

from typing import List, Optional, Sequence

import torch
from torch import Tensor

from .energy_scaler import EnergyGradScaler


def default_step_loss_scaler() -> EnergyGradScaler:
    """Dynamic fp16 scale of the early steps' losses: mmengine's GradScaler defaults."""
    return EnergyGradScaler(
        init_scale=2.0**16, growth_interval=2000, min_scale=1.0, max_scale=2.0**24
    )


class _InjectGradients(torch.autograd.Function):
    """Zero scalar; its backward hands ``grad_output * accumulated`` to the parameters.

    The accumulated tensors are scaled in place and handed over, not copied: with ``.grad``
    unset (mmengine zeroes with ``set_to_none``) they become the ``.grad`` tensors, so the
    sum costs no second parameter-sized buffer during the backward.
    """

    @staticmethod
    def forward(ctx, like: Tensor, accumulated: List[Optional[Tensor]], *params: Tensor) -> Tensor:
        ctx.accumulated = accumulated
        ctx.dtypes = [p.dtype for p in params]
        return like.new_zeros(())

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> tuple:
        if ctx.accumulated is None:
            raise RuntimeError(
                'the stepwise gradients of the early restoration steps were '
                'already handed to a backward; backpropagate the loss once'
            )
        tensors = list(ctx.accumulated)
        ctx.accumulated.clear()  # drop the owner's references: the tensors become .grad
        ctx.accumulated = None
        grads = tuple(
            None if g is None else g.mul_(grad_output).to(dtype)
            for g, dtype in zip(tensors, ctx.dtypes)
        )
        del tensors
        return (None, None, *grads)


class StepwiseGradients:
    """Parameter gradients of the early steps, accumulated until the last step's backward.

    Args:
        params: The trainable tensors (parameters and a learnable alpha).
        fp16_scaler: Dynamic loss scale for fp16 autocast; ``None`` for fp32/bf16.
    """

    def __init__(
        self, params: Sequence[Tensor], fp16_scaler: Optional[EnergyGradScaler] = None
    ) -> None:
        self.params = list(params)
        self.fp16_scaler = fp16_scaler
        self.accumulated: List[Optional[Tensor]] = [None] * len(self.params)
        #: Without ``fp16_scaler``: a boolean scalar per :meth:`backward_now` with a graph.
        self.finite: List[Tensor] = []

    def backward_now(self, loss: Tensor) -> None:
        """Add d(loss)/d(params) and free ``loss``'s graph (a loss without graph, or one
        that reaches no parameter, adds 0 and counts as finite)."""
        scale = self.fp16_scaler.scale if self.fp16_scaler is not None else 1.0
        grads = (
            torch.autograd.grad(
                loss * scale if scale != 1.0 else loss, self.params, allow_unused=True
            )
            if loss.requires_grad
            else ()
        )
        present = [g.isfinite().all() for g in grads if g is not None]
        if self.fp16_scaler is None:
            self.finite.append(
                torch.stack(present).all()
                if present
                else torch.ones((), dtype=torch.bool, device=loss.device)
            )
        elif present:
            self.fp16_scaler.update(found_inf=not bool(torch.stack(present).all()))
        for index, grad in enumerate(grads):
            if grad is None:
                continue
            grad = grad.to(torch.promote_types(grad.dtype, torch.float32))
            if scale != 1.0:
                grad = grad / scale
            total = self.accumulated[index]
            self.accumulated[index] = grad if total is None else total.add_(grad)

    def surrogate(self, like: Tensor) -> Tensor:
        """A zero scalar (dtype and device of ``like``, the loss it is added to) carrying
        the accumulated gradients into that loss's backward."""
        if not any(g is not None for g in self.accumulated):
            return like.new_zeros(())
        return _InjectGradients.apply(like.detach(), self.accumulated, *self.params)


class StepwiseBackward:
    """The restoration chain's per-step callback ``after_step(n, loss_n) -> loss_n``.

    Steps 1..N-1 are backpropagated at once and come back detached; the last step's loss
    comes back carrying their gradients, for mmengine's one backward.

    Args:
        params: The trainable tensors (parameters and a learnable alpha).
        num_steps: N.
        fp16_scaler: Dynamic loss scale for fp16 autocast; ``None`` for fp32/bf16.
    """

    def __init__(
        self,
        params: Sequence[Tensor],
        num_steps: int,
        fp16_scaler: Optional[EnergyGradScaler] = None,
    ) -> None:
        self.num_steps = num_steps
        self.gradients = StepwiseGradients(params, fp16_scaler)

    def __call__(self, n: int, loss: Tensor) -> Tensor:
        if n < self.num_steps:
            self.gradients.backward_now(loss)
            return loss.detach()
        return loss + self.gradients.surrogate(like=loss)

    @property
    def finite(self) -> List[Tensor]:
        """Per early step (outside fp16): whether its parameter gradients were finite."""
        return self.gradients.finite


def whole_backward(n: int, loss: Tensor) -> Tensor:
    """The per-step callback of Listing 1: every step's graph waits for the one backward."""
    return loss
