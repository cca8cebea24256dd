"""Fixtures for the model tests (helpers live in ``ebm_testing``)."""

from typing import Callable

import pytest
import torch
from ebm_testing import build_model, real_photo_batch

from mmpretrain_ebm.models import EnergyRestorationAlgorithm


@pytest.fixture
def photos() -> torch.Tensor:
    return real_photo_batch()


@pytest.fixture
def model_factory() -> Callable[..., EnergyRestorationAlgorithm]:
    return build_model
