"""Tiny Fashion-MNIST stand-ins: real idx files of learnable 28x28 images (tests import this
module as ``from fashion_mnist_testing import write_idx_files``)."""

import gzip
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

NUM_CLASSES = 10
SIDE = 28
SQUARE = 7
PREFIXES = {'train': 'train', 'test': 't10k'}


def idx_bytes(array: np.ndarray) -> bytes:
    """The idx encoding of a uint8 array of 1 (labels, magic 2049) or 3 (images, magic 2051)
    dimensions: big-endian magic ``0x0000 08 ndim``, each dimension as uint32, the data."""
    if array.dtype != np.uint8 or array.ndim not in (1, 3):
        raise ValueError(
            f'idx_bytes takes uint8 arrays of 1 or 3 dimensions, got {array.dtype} {array.shape}'
        )
    header = np.array([0x800 + array.ndim, *array.shape], dtype='>u4')
    return header.tobytes() + array.tobytes()


def class_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``N x 28 x 28`` uint8 images: class ``k`` is a bright 7x7 square (values 180..255) at
    one of 12 places of a 3x4 grid (row ``k // 4``, column ``k % 4``), moved by up to 1 px,
    on noise of 0..60."""
    images = rng.integers(0, 61, size=(len(labels), SIDE, SIDE)).astype(np.uint8)
    for image, label in zip(images, labels):
        top = np.clip(2 + 9 * (label // 4) + rng.integers(-1, 2), 0, SIDE - SQUARE)
        left = np.clip(7 * (label % 4) + rng.integers(-1, 2), 0, SIDE - SQUARE)
        image[top : top + SQUARE, left : left + SQUARE] = rng.integers(180, 256, (SQUARE, SQUARE))
    return images


def write_idx_files(
    folder: Path, num_train: int = 40, num_test: int = 20, gz: bool = True, seed: int = 0
) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """Write the four Fashion-MNIST idx files (``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, with
    ``.gz`` when ``gz``) of :func:`class_images` into ``folder``.

    Labels are balanced (each class ``num // 10`` or one more times) in random order. Returns
    ``{'train': (images, labels), 'test': (images, labels)}``: uint8 arrays ``N x 28 x 28``
    and ``N``."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, num in (('train', num_train), ('test', num_test)):
        labels = rng.permutation(np.arange(num) % NUM_CLASSES).astype(np.uint8)
        images = class_images(labels, rng)
        arrays[split] = (images, labels)
        for kind, array in (('images-idx3', images), ('labels-idx1', labels)):
            data = idx_bytes(array)
            name = f'{PREFIXES[split]}-{kind}-ubyte'
            if gz:
                (folder / f'{name}.gz').write_bytes(gzip.compress(data, mtime=0))
            else:
                (folder / name).write_bytes(data)
    return arrays
