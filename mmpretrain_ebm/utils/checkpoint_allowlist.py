"""Allow-list the types of mmengine runner checkpoints for ``torch.load(weights_only=True)``.

torch >= 2.6 loads with ``weights_only=True``; an mmengine checkpoint also holds the message
hub's ``HistoryBuffer`` objects, the numpy arrays and scalars inside them, and the buffers'
statistics methods, which pickle as ``getattr(HistoryBuffer, 'mean')``. Resuming fails unless
exactly these are declared safe. ``getattr`` is not allowed in general: the unpickler gets a
restricted stand-in that resolves HistoryBuffer's registered statistics and nothing else.
weights_only itself stays on.
"""
import pickle
from typing import Callable

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

# numpy >= 2 pickles arrays with ``numpy._core`` paths, numpy 1 with ``numpy.core``.
_numpy_core = np._core if hasattr(np, '_core') else np.core


# HistoryBuffer registers these in every instance's ``__init__``; custom ones join the dict.
_BUILTIN_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})


def history_buffer_statistic(owner: type, name: str) -> Callable:
    """Unpickling stand-in for ``getattr``: only ``HistoryBuffer``'s statistics methods."""
    allowed = _BUILTIN_STATISTICS | set(HistoryBuffer._statistics_methods)
    if owner is HistoryBuffer and name in allowed:
        return getattr(owner, name)
    raise pickle.UnpicklingError(
        f'weights_only load refused getattr({owner!r}, {name!r}): only HistoryBuffer '
        f'statistics {sorted(allowed)} are allowed')


RUNNER_CHECKPOINT_TYPES = (
    HistoryBuffer,
    np.ndarray,
    np.dtype,
    _numpy_core.multiarray._reconstruct,
    _numpy_core.multiarray.scalar,
    # the dtypes of the numbers that HistoryBuffer and the loop counters hold
    *(type(np.dtype(name)) for name in ('float64', 'float32', 'int64', 'int32', 'bool')),
    (history_buffer_statistic, 'builtins.getattr'),
)


def allow_runner_checkpoint_types() -> None:
    """Declare :data:`RUNNER_CHECKPOINT_TYPES` safe for ``torch.load(weights_only=True)``."""
    torch.serialization.add_safe_globals(list(RUNNER_CHECKPOINT_TYPES))
