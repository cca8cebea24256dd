"""Write a tiny dataset in ADE20K's layout: real photographs, annotations derived from them."""

from pathlib import Path

import cv2
import numpy as np
from skimage import data as skdata

# Raw ADE20K label values written into the annotations: 0 is "other" (ignored), 1..150 are
# the classes; reduce_zero_label maps them to 255, 0, 4 and 149.
RAW_LABELS = (0, 1, 5, 150)
REDUCED_LABELS = (0, 4, 149, 255)


def write_ade20k_split(root: Path, split: str, photos: tuple, crop: int, seed: int) -> None:
    """Write ``images/<split>/*.jpg`` and ``annotations/<split>/*.png`` under ``root``.

    Each annotation labels the brightness quartiles of its image with :data:`RAW_LABELS`,
    so every label occurs in every image.
    """
    rng = np.random.default_rng(seed)
    images, annotations = root / 'images' / split, root / 'annotations' / split
    images.mkdir(parents=True, exist_ok=True)
    annotations.mkdir(parents=True, exist_ok=True)
    for name in photos:
        photo = getattr(skdata, name)()
        top = rng.integers(0, photo.shape[0] - crop + 1)
        left = rng.integers(0, photo.shape[1] - crop + 1)
        patch = np.ascontiguousarray(photo[top : top + crop, left : left + crop])
        brightness = patch.astype(np.float32).mean(axis=2)
        quartile = np.searchsorted(np.quantile(brightness, [0.25, 0.5, 0.75]), brightness)
        label = np.asarray(RAW_LABELS, dtype=np.uint8)[quartile]
        stem = f'ADE_{split}_{name}'
        cv2.imwrite(str(images / f'{stem}.jpg'), cv2.cvtColor(patch, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(annotations / f'{stem}.png'), label)
