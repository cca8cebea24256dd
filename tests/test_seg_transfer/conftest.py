"""Fixtures of the ADE20K transfer tests."""

from pathlib import Path

import pytest
from ade20k_layout import write_ade20k_split


@pytest.fixture(scope='session')
def tiny_ade20k_root(tmp_path_factory) -> Path:
    """ADEChallengeData2016 layout: 4 training and 2 validation 64-px image/label pairs."""
    root = tmp_path_factory.mktemp('ADEChallengeData2016')
    write_ade20k_split(
        root, 'training', ('astronaut', 'coffee', 'chelsea', 'rocket'), crop=64, seed=0
    )
    write_ade20k_split(root, 'validation', ('immunohistochemistry', 'cat'), crop=64, seed=1)
    return root
