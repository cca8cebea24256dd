"""Allow-list the types of mmengine runner checkpoints for ``torch.load(weights_only=True)``.

torch >= 2.6 loads with ``weights_only=True``; an mmengine checkpoint also holds the message
hub's ``HistoryBuffer`` objects, the numpy arrays and scalars inside them, and the buffers'
statistics methods, which pickle as ``getattr(HistoryBuffer, 'mean')``. Resuming fails unless
exactly these are declared safe. weights_only itself stays on, and the two risky pieces get
restricted stand-ins:

* ``getattr`` resolves only mmengine's own statistics (:data:`HISTORY_BUFFER_STATISTICS`).
* mmengine's ``HistoryBuffer.__setstate__`` merges the pickled statistics into the registry
  that the class shares with every buffer of the process, so a crafted checkpoint could add
  names or rebind ``'mean'``. The pickled name ``HistoryBuffer`` therefore resolves to
  :class:`CheckpointHistoryBuffer`, which checks the statistics instead of merging them.
"""

import pickle
from typing import Callable

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

# numpy >= 2 pickles arrays with ``numpy._core`` paths, numpy 1 with ``numpy.core``.
_numpy_core = np._core if hasattr(np, '_core') else np.core

# The statistics mmengine registers itself (``HistoryBuffer._set_default_statistics``).
HISTORY_BUFFER_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})
# The attributes a HistoryBuffer's pickled state may set besides 'statistics_methods'.
_HISTORY_BUFFER_ATTRIBUTES = frozenset(vars(HistoryBuffer()))
_HISTORY_BUFFER_PATH = f'{HistoryBuffer.__module__}.{HistoryBuffer.__qualname__}'


def history_buffer_statistic(owner: type, name: str) -> Callable:
    """Unpickling stand-in for ``getattr``: only mmengine's ``HistoryBuffer`` statistics."""
    if owner in (HistoryBuffer, CheckpointHistoryBuffer) and name in HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'weights_only load refused getattr({owner!r}, {name!r}): only HistoryBuffer '
        f'statistics {sorted(HISTORY_BUFFER_STATISTICS)} are allowed'
    )


class CheckpointHistoryBuffer(HistoryBuffer):
    """What the pickled ``HistoryBuffer`` loads as; it becomes a plain ``HistoryBuffer``.

    Its ``__setstate__`` accepts the buffer's own attributes and, as ``statistics_methods``,
    only mmengine's statistics under their own names (all a runner checkpoint holds). Those
    are registered on every ``HistoryBuffer`` already, so the class registry is left as is.
    """

    def __setstate__(self, state: dict) -> None:
        """Restore a buffer from a checkpoint; refuse state that is not a runner's."""
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(
                f'HistoryBuffer state must be a dict, got {type(state).__name__}'
            )
        unknown = set(state) - _HISTORY_BUFFER_ATTRIBUTES - {'statistics_methods'}
        if unknown:
            raise pickle.UnpicklingError(
                f'HistoryBuffer state has unknown attributes {sorted(map(repr, unknown))}; '
                f'allowed: {sorted(_HISTORY_BUFFER_ATTRIBUTES)} and statistics_methods'
            )
        methods = state.get('statistics_methods', {})
        if not isinstance(methods, dict):
            raise pickle.UnpicklingError(
                f'HistoryBuffer statistics_methods must be a dict, got {type(methods).__name__}'
            )
        for name, method in methods.items():
            if name not in HISTORY_BUFFER_STATISTICS or method is not getattr(HistoryBuffer, name):
                raise pickle.UnpicklingError(
                    f'weights_only load refused HistoryBuffer statistic {name!r} -> {method!r}: '
                    f"only mmengine's {sorted(HISTORY_BUFFER_STATISTICS)}, each bound to the "
                    'HistoryBuffer method of that name, are allowed'
                )
        self.__dict__.update({k: v for k, v in state.items() if k != 'statistics_methods'})
        self.__class__ = HistoryBuffer


RUNNER_CHECKPOINT_TYPES = (
    (CheckpointHistoryBuffer, _HISTORY_BUFFER_PATH),
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
