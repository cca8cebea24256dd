"""Fixtures of the Python API tests: a tiny real energy model with a checkpoint, and
photographs of a size that needs resizing."""

from pathlib import Path

import cv2
import pytest
from api_testing import save_checkpoint, tiny_demo_config
from skimage import data as skdata


@pytest.fixture(scope='session')
def tiny_energy(tmp_path_factory):
    """(config file, checkpoint, state dict) of the tiny demo model."""
    folder = tmp_path_factory.mktemp('tiny_energy')
    cfg = tiny_demo_config()
    config = folder / 'tiny_demo.py'
    cfg.dump(str(config))
    checkpoint = folder / 'iter_1.pth'
    state_dict = save_checkpoint(cfg, checkpoint)
    return config, checkpoint, state_dict


@pytest.fixture(scope='session')
def wide_photos(tmp_path_factory) -> Path:
    """Four 80x100 (HxW) photographs: resized to 64x80 and center-cropped to 64x64 by the
    demo's test pipeline."""
    folder = tmp_path_factory.mktemp('wide_photos')
    for name in ('astronaut', 'coffee', 'chelsea', 'rocket'):
        photo = getattr(skdata, name)()
        patch = cv2.resize(photo[:320, :400], (100, 80), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f'{name}.png'), cv2.cvtColor(patch, cv2.COLOR_RGB2BGR))
    return folder
