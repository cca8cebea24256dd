"""mmengine's AMP wrapper, also keeping the fp16 scales of the energy restoration steps."""

from contextlib import contextmanager
from typing import Dict, Optional

from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper
from mmpretrain.registry import OPTIM_WRAPPERS
from torch import nn

#: Key of the scales in the wrapper's state dict (the checkpoint's ``optimizer`` entry).
STATE_KEY = 'energy_scalers'


@OPTIM_WRAPPERS.register_module()
class EnergyAmpOptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` whose state also holds the model's dynamic fp16 scales
    (``EnergyRestorationAlgorithm.fp16_scalers()``: the energy scale before the inner
    gradient and the early steps' loss scale), as it holds its own loss scale: they are
    saved with the optimizer state and restored on resume. Under bf16 they are unused.

    The wrapper learns the model from :meth:`optim_context` (every ``train_step``); a state
    loaded before that (``--resume``) waits until then.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._scalers: Optional[dict] = None
        self._pending: Optional[Dict[str, dict]] = None

    @contextmanager
    def optim_context(self, model: nn.Module):
        self._track(model.module if is_model_wrapper(model) else model)
        with super().optim_context(model):
            yield

    def _track(self, model: nn.Module) -> None:
        if self._scalers is not None:
            return
        if not callable(getattr(model, 'fp16_scalers', None)):
            raise TypeError(
                'EnergyAmpOptimWrapper keeps the fp16 scales of EnergyRestorationAlgorithm, '
                f'but the model is {type(model).__name__}; use AmpOptimWrapper for it'
            )
        self._scalers = model.fp16_scalers()
        if self._pending is not None:
            self._load_scalers(self._pending)
            self._pending = None

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self._scalers is not None:
            state[STATE_KEY] = {name: s.state_dict() for name, s in self._scalers.items()}
        elif self._pending is not None:
            state[STATE_KEY] = self._pending
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        scalers = state_dict.pop(STATE_KEY, None)
        super().load_state_dict(state_dict)
        if scalers is None:  # an older checkpoint: the model's pre-hook read `_extra_state`
            return
        if not isinstance(scalers, dict):
            raise ValueError(
                f'optimizer state {STATE_KEY!r} must map scaler names to their state dicts, '
                f'got {scalers!r}'
            )
        if self._scalers is None:
            self._pending = scalers
        else:
            self._load_scalers(scalers)

    def _load_scalers(self, states: Dict[str, dict]) -> None:
        unknown = sorted(set(states) - set(self._scalers))
        if unknown:
            raise ValueError(
                f'optimizer state {STATE_KEY!r} has scales {unknown} that the model does not '
                f'have (it has {sorted(self._scalers)})'
            )
        for name, state in states.items():
            self._scalers[name].load_state_dict(state)
