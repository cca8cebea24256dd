"""Forwards that must not touch BatchNorm running statistics."""

from contextlib import contextmanager
from typing import Iterator, List, Optional, Tuple

from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


def _tracking_batchnorms(module: nn.Module) -> List[_BatchNorm]:
    """Train-mode BatchNorm layers of ``module`` that update running statistics."""
    return [
        bn
        for bn in module.modules()
        if isinstance(bn, _BatchNorm) and bn.training and bn.track_running_stats
    ]


@contextmanager
def frozen_batchnorm_statistics(module: nn.Module) -> Iterator[None]:
    """Train-mode BatchNorm layers normalize with batch statistics but do not update their
    running statistics inside this context (forwards that only log, or that repeat a pass).

    Toggling ``track_running_stats`` leaves the buffers untouched: restoring them by an
    in-place copy would bump their version and break a pending double backward, whose
    BatchNorm nodes keep references to them. It changes what ``batch_norm`` saves for
    backward, so a pass that activation checkpointing recomputes later, outside the
    context, needs :class:`RunningStatisticsKept` instead.
    """
    toggled = _tracking_batchnorms(module)
    for bn in toggled:
        bn.track_running_stats = False
    try:
        yield
    finally:
        for bn in toggled:
            bn.track_running_stats = True


class RunningStatisticsKept:
    """Re-enterable context: train-mode BatchNorm layers of ``module`` normalize with batch
    statistics and save the same tensors for backward as in a tracked pass, but leave their
    running statistics and ``num_batches_tracked`` as they were.

    ``momentum`` is 0 inside (running = 1 * running + 0 * batch: the values are unchanged and
    the kernel does not bump the buffers' versions), also for ``momentum=None`` (cumulative
    average); ``num_batches_tracked``, which the layer still increments, is put back on exit.
    For activation checkpointing's recomputation, which must save what the forward saved.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self._saved: List[Tuple[_BatchNorm, Optional[float], Optional[Tensor]]] = []

    def __enter__(self) -> None:
        self._saved = [
            (
                bn,
                bn.momentum,
                None if bn.num_batches_tracked is None else bn.num_batches_tracked.clone(),
            )
            for bn in _tracking_batchnorms(self.module)
        ]
        for bn, _, _ in self._saved:
            bn.momentum = 0.0

    def __exit__(self, *exc_info) -> None:
        for bn, momentum, count in self._saved:
            bn.momentum = momentum
            if count is not None:
                bn.num_batches_tracked.copy_(count)
        self._saved = []
