"""Checks that a training step produced finite values, with one host sync at the end."""

from typing import List, Tuple

import torch
from torch import Tensor

#: How each watched quantity is named in the error.
LABELS = {
    'alpha': 'alpha',
    'energy': 'energy',
    'grad': 'input gradient dE/dx',
    'loss': 'restoration loss',
    'parameter_gradient': 'parameter gradient',
}


class NonFiniteGuard:
    """Collect named quantities of the restoration steps; :meth:`check` raises for the first
    non-finite one (in step order, then in the order watched) before the optimizer step.

    Args:
        num_steps: N, for the message.
    """

    def __init__(self, num_steps: int) -> None:
        self.num_steps = num_steps
        self._entries: List[Tuple[int, str, Tensor, Tensor]] = []

    def watch(self, step: int, **quantities: Tensor) -> None:
        """Record each quantity (a name of :data:`LABELS`) of restoration step ``step``
        (0: before the chain)."""
        for name, value in quantities.items():
            value = value.detach()
            self._entries.append((step, name, torch.isfinite(value).all(), value))

    def watch_flags(self, name: str, flags: List[Tensor]) -> None:
        """Record already computed booleans, one per step from step 1 on."""
        self._entries += [(step, name, flag, flag) for step, flag in enumerate(flags, start=1)]

    def check(self, note: str = '') -> None:
        """Raise ``FloatingPointError`` naming the first non-finite quantity; ``note`` is
        appended to the step it names (e.g. the fp16 scale in use)."""
        entries = sorted(self._entries, key=lambda entry: entry[0])  # stable: watch order
        finite = torch.stack([flag for _, _, flag, _ in entries]).tolist()
        if all(finite):
            return
        step, name, _, value = entries[finite.index(False)]
        name = LABELS.get(name, name)
        if step == 0:
            shown = value.item() if value.numel() == 1 else 'not finite'
            raise FloatingPointError(f'{name} is {shown}; stopping before the optimizer step')
        raise FloatingPointError(
            f'non-finite {name} at restoration step {step} of {self.num_steps}{note}; '
            'stopping before the optimizer step, so the weights are unchanged'
        )
