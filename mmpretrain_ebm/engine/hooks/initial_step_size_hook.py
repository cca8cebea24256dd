"""Set the initial step size alpha from the first training batch (scale-aware alpha)."""

import math
from typing import Optional

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmpretrain.registry import HOOKS

from ...visualization.restoration_chain import unwrap_model

#: Key of ``checkpoint['meta']`` recording that (and how) alpha was set.
META_KEY = 'initial_step_size'


def _check_positive(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f'{what} must be a finite number > 0, got {value!r}')
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f'{what} must be a finite number > 0, got {value!r}')
    return float(value)


def input_gradient_rms(model, corrupted: torch.Tensor) -> torch.Tensor:
    """Sum of squares and count of dE/dx at ``corrupted`` [B, C, H, W] (normalized pixels).

    Returns a float64 tensor ``[sum(g^2), numel(g)]`` (on the input's device), so that ranks
    can add theirs before the square root. dE/dx is the gradient of the batch-summed energy,
    as in a restoration step, taken in the model's current (training) mode without a graph.
    """
    x = corrupted.detach().float().requires_grad_(True)
    with torch.enable_grad():
        energy = model.energy(x).sum()
        (grad,) = torch.autograd.grad(energy, x)
    grad = grad.double()
    return torch.stack([grad.square().sum(), grad.new_tensor(float(grad.numel()))])


@HOOKS.register_module()
class InitialStepSizeHook(Hook):
    """Before the first training iteration, set ``alpha = target_rms / RMS(dE/dx)``.

    The first restoration step x~1 = x~0 - alpha * dE/dx then moves the normalized pixels by
    ``target_rms`` (root mean square over every pixel and channel of the first batch's
    corrupted view, all DDP ranks together), whatever the resolution and backbone: at
    initialization |dE/dx| shrinks with the number of pixels, so a fixed alpha does not
    fit every size. Sets the model's ``alpha`` in place (the optimizer keeps the same
    parameter; a model with a ``set_alpha(value)`` method, e.g. alpha = exp(log_alpha), is
    set through it) on every rank to the same value, logs it and records it in
    ``checkpoint['meta']['initial_step_size']``. A loaded checkpoint (resume or
    ``load_from``) that holds that record keeps its alpha, and so does a run resumed after
    iteration 0 from a checkpoint without it; ``load_from`` weights without the record get
    alpha set anew. The configured ``model.alpha`` only serves until then.

    Args:
        target_rms: RMS displacement of the first step, in normalized pixels (> 0); the
            default is the pretraining configs' (docs/step_size.md).
        min_alpha, max_alpha: Bounds of the computed alpha (a zero gradient, e.g. a head
            initialized to zero, would give infinity).
    """

    priority = 'VERY_HIGH'

    def __init__(
        self, target_rms: float = 0.03, min_alpha: float = 1e-3, max_alpha: float = 1e6
    ) -> None:
        self.target_rms = _check_positive(target_rms, 'target_rms')
        self.min_alpha = _check_positive(min_alpha, 'min_alpha')
        self.max_alpha = _check_positive(max_alpha, 'max_alpha')
        if self.min_alpha > self.max_alpha:
            raise ValueError(f'min_alpha {min_alpha} must be <= max_alpha {max_alpha}')
        self.record: Optional[dict] = None

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Keep the checkpoint's alpha if this hook had set it (resume or ``load_from``)."""
        record = checkpoint.get('meta', {}).get(META_KEY)
        if record is not None:
            self.record = dict(record)
            runner.logger.info(
                'InitialStepSizeHook: resumed with alpha set at the start of the run '
                '(%.6g); not recomputed',
                self.record['alpha'],
            )

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        if self.record is not None:
            checkpoint.setdefault('meta', {})[META_KEY] = dict(self.record)

    def before_train_iter(self, runner: Runner, batch_idx: int, data_batch=None) -> None:
        if self.record is not None:
            return
        model = unwrap_model(runner.model)
        if runner.iter > 0:  # resumed from a checkpoint without our record: keep its alpha
            self.record = dict(alpha=float(model.alpha.item()), grad_rms=None, iter=None)
            self.record['target_rms'] = self.target_rms
            runner.logger.warning(
                'InitialStepSizeHook: resumed at iteration %d from a checkpoint that does not '
                'record an initial step size; keeping its alpha %.6g',
                runner.iter,
                self.record['alpha'],
            )
            return
        if data_batch is None:
            raise ValueError('InitialStepSizeHook needs the training batch (got None)')
        data = model.data_preprocessor(data_batch, training=True)
        inputs = data['inputs']
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                'InitialStepSizeHook expects the preprocessed training inputs to be '
                f'[clean, corrupted] (a corruption transform in the pipeline), got {inputs!r:.80}'
            )
        corrupted = inputs[1]
        stats = input_gradient_rms(model, corrupted)
        all_reduce(stats, op='sum')
        grad_rms = math.sqrt(stats[0].item() / stats[1].item())
        raw = self.target_rms / grad_rms if grad_rms > 0 else math.inf
        alpha = min(max(raw, self.min_alpha), self.max_alpha)
        setter = getattr(model, 'set_alpha', None)
        if callable(setter):  # a model whose alpha is a function of its parameters
            setter(alpha)
        else:
            with torch.no_grad():
                model.alpha.fill_(alpha)
        self.record = dict(
            alpha=float(model.alpha.item()),
            grad_rms=grad_rms,
            target_rms=self.target_rms,
            iter=runner.iter,
        )
        clipped = '' if alpha == raw else f' (clipped from {raw:.6g})'
        runner.logger.info(
            'InitialStepSizeHook: RMS dE/dx %.4g per normalized pixel on the first batch '
            '(%d values, all ranks) -> alpha = %.6g%s for a first step of RMS %.4g',
            grad_rms,
            int(stats[1].item()),
            self.record['alpha'],
            clipped,
            self.target_rms,
        )
