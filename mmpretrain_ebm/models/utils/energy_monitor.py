"""What the logger shows besides the loss: the step size and the energies (not trained on)."""

from typing import Dict

import torch
from torch import Tensor, nn

from .batchnorm import frozen_batchnorm_statistics


class EnergyMonitor:
    """``monitor(model, clean, corrupted_energy) -> log values``.

    ``alpha``, ``energy_corrupted`` (mean E(x~0), already computed by step 1) and, on every
    ``clean_interval``-th call (the first included), ``energy_clean``, the mean E(x): one
    forward without gradient that leaves BatchNorm statistics untouched. Their gap is what
    the paper argues for.

    Args:
        clean_interval: Calls between clean-energy logs (int >= 0 or bool); ``True`` is every
            call, ``0``/``False`` never.
    """

    def __init__(self, clean_interval: int = 10) -> None:
        if not isinstance(clean_interval, int) or clean_interval < 0:
            raise ValueError(
                'log_clean_energy must be an interval in iterations (int >= 0) or a bool, '
                f'got {clean_interval!r}'
            )
        self.clean_interval = int(clean_interval)
        self.calls = 0

    def __call__(
        self, model: nn.Module, clean: Tensor, corrupted_energy: Tensor
    ) -> Dict[str, Tensor]:
        logs = {
            'alpha': model.alpha.detach().clone(),
            'energy_corrupted': corrupted_energy.detach().mean(),
        }
        if self.clean_interval and self.calls % self.clean_interval == 0:
            with torch.no_grad(), frozen_batchnorm_statistics(model):
                logs['energy_clean'] = model.energy(clean).mean()
        self.calls += 1
        return logs
