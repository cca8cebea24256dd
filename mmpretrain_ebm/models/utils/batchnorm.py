"""Forwards that must not touch BatchNorm running statistics."""
from contextlib import contextmanager
from typing import Iterator

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@contextmanager
def frozen_batchnorm_statistics(module: nn.Module) -> Iterator[None]:
    """Train-mode BatchNorm layers normalize with batch statistics but do not update their
    running statistics inside this context (forwards that only log, or that repeat a pass).

    Toggling ``track_running_stats`` leaves the buffers untouched: restoring them by an
    in-place copy would bump their version and break a pending double backward, whose
    BatchNorm nodes keep references to them.
    """
    toggled = [bn for bn in module.modules()
               if isinstance(bn, _BatchNorm) and bn.training and bn.track_running_stats]
    for bn in toggled:
        bn.track_running_stats = False
    try:
        yield
    finally:
        for bn in toggled:
            bn.track_running_stats = True
