"""Tiny CIFAR-10 stand-ins: class folders of real 32 x 32 RGB JPEG files that a classifier can
learn (tests import this module as ``from cifar10_testing import write_class_folders``)."""

from pathlib import Path

import cv2
import numpy as np

NUM_CLASSES = 10
SIDE = 32
SQUARE = 8
#: Class k's square colour (RGB): each class its own hue and place.
COLOURS = [
    (230, 40, 40), (40, 230, 40), (40, 40, 230), (230, 230, 40), (230, 40, 230),
    (40, 230, 230), (250, 140, 20), (140, 20, 250), (20, 250, 140), (240, 240, 240),
]  # fmt: skip


def class_image(label: int, rng: np.random.Generator) -> np.ndarray:
    """A 32-px RGB uint8 image of class ``label``: its coloured 8-px square at one of 16
    places of a 4 x 4 grid (row ``label // 4``, column ``label % 4``), moved by up to 2 px, on
    grey noise of 0..80."""
    image = rng.integers(0, 80, (SIDE, SIDE, 1)).repeat(3, axis=2).astype(np.uint8)
    row, col = divmod(label, 4)
    top = int(np.clip(row * SQUARE + rng.integers(-2, 3), 0, SIDE - SQUARE))
    left = int(np.clip(col * SQUARE + rng.integers(-2, 3), 0, SIDE - SQUARE))
    image[top : top + SQUARE, left : left + SQUARE] = COLOURS[label]
    return image


def write_class_folders(root: Path, train_per_class: int, test_per_class: int, seed=0) -> Path:
    """``root/train/class<k>/*.jpg`` and ``root/test/class<k>/*.jpg`` as the project's
    CIFAR-10 tarball unpacks (mmpretrain's ``CustomDataset``: folders in alphabetical order are
    the labels); returns ``root``."""
    rng = np.random.default_rng(seed)
    for split, count in (('train', train_per_class), ('test', test_per_class)):
        for label in range(NUM_CLASSES):
            folder = Path(root) / split / f'class{label}'
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                rgb = class_image(label, rng)
                assert cv2.imwrite(str(folder / f'{index:04d}.jpg'), rgb[..., ::-1])
    return Path(root)
