"""Shared fixtures: small real photographs (crops of scikit-image's bundled samples)."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skdata

PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket')


def pytest_addoption(parser) -> None:
    parser.addoption(
        '--device',
        choices=('cpu', 'cuda'),
        default=None,
        help='run the device tests (tests/test_cuda) on this device; without the option '
        'they are skipped. --device cpu is their dry run on a machine without a GPU.',
    )


def pytest_configure(config) -> None:
    if config.getoption('--device') == 'cuda':
        import torch

        if not torch.cuda.is_available():
            raise pytest.UsageError('--device cuda: torch sees no CUDA device')


def write_crops(folder: Path, names: tuple, crop: int, per_photo: int, seed: int) -> list:
    """Write ``per_photo`` random ``crop``-px crops of each named photograph as BGR PNGs."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        photo = getattr(skdata, name)()
        height, width = photo.shape[:2]
        for index in range(per_photo):
            top = rng.integers(0, height - crop + 1)
            left = rng.integers(0, width - crop + 1)
            patch = photo[top : top + crop, left : left + crop]
            path = folder / f'{name}_{index}.png'
            cv2.imwrite(str(path), cv2.cvtColor(patch, cv2.COLOR_RGB2BGR))
            paths.append(path)
    return paths


@pytest.fixture(scope='session')
def photo_crops_dir(tmp_path_factory) -> Path:
    """A folder of 16 real 64-px photo crops (4 photographs x 4), no labels."""
    folder = tmp_path_factory.mktemp('photo_crops')
    write_crops(folder, PHOTOS, crop=64, per_photo=4, seed=0)
    return folder


@pytest.fixture(scope='session')
def labelled_photo_dir(tmp_path_factory) -> Path:
    """An ImageNet-style folder tree: one class per photograph, 4 crops of 32 px each."""
    root = tmp_path_factory.mktemp('labelled_photos')
    for label, name in enumerate(PHOTOS[:2]):
        write_crops(root / f'class_{label}_{name}', (name,), crop=32, per_photo=4, seed=label)
    return root
