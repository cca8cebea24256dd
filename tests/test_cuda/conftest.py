"""Device tests: the model paths that only a GPU takes, run with ``pytest tests/test_cuda
--device cuda``. Without ``--device`` every test here is skipped (CPU CI); ``--device cpu``
runs them on the CPU, their dry run on a machine without a GPU."""

import sys
from pathlib import Path

import pytest
import torch

# the model tests' helpers and the independent float64 oracle
sys.path.insert(0, str(Path(__file__).parents[1] / 'test_models'))


@pytest.fixture(scope='session')
def device(request) -> torch.device:
    name = request.config.getoption('--device')
    if name is None:
        pytest.skip('device tests run only with --device cuda (or --device cpu)')
    return torch.device(name)
