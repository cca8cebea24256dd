"""Cut scikit-image's bundled sample photographs into the embedded demo dataset.

    python tools/dataset_converters/prepare_demo_data.py data/demo [--crop 96] [--per-image 24]

Writes ``<out>/train/*.png`` and ``<out>/val/*.png`` (a folder layout that mmpretrain's
``CustomDataset`` reads with ``with_label=False``). Validation crops come from photographs that
the training split never sees, so restorations of them measure generalization. Runs in about
a second and is idempotent: an existing, complete folder is left as it is.
"""
import argparse
from pathlib import Path
from typing import Callable, Dict, List

import cv2
import numpy as np
from skimage import data as skdata

# RGB photographs bundled in the scikit-image wheel (no download needed). Note that
# ``skimage.data.cat`` *is* ``chelsea``: each photograph appears here once, under one name.
PHOTO_LOADERS: Dict[str, Callable[[], np.ndarray]] = {
    'astronaut': skdata.astronaut,
    'coffee': skdata.coffee,
    'chelsea': skdata.chelsea,
    'rocket': skdata.rocket,
    'immunohistochemistry': skdata.immunohistochemistry,
    'hubble_deep_field': skdata.hubble_deep_field,
    'motorcycle_left': lambda: skdata.stereo_motorcycle()[0],
    'motorcycle_right': lambda: skdata.stereo_motorcycle()[1],
}
TRAIN_PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'immunohistochemistry',
                'hubble_deep_field')
# the two views of a stereo pair: one scene that the training photographs do not show
VAL_PHOTOS = ('motorcycle_left', 'motorcycle_right')


def load_photos(names: tuple) -> Dict[str, np.ndarray]:
    """Return the named sample photographs as HxWx3 uint8 RGB arrays."""
    photos = {}
    for name in names:
        image = PHOTO_LOADERS[name]()
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f'skimage.data.{name} is not an RGB photograph: {image.shape}')
        photos[name] = image
    return photos


def random_crops(image: np.ndarray, crop: int, count: int,
                 rng: np.random.Generator) -> List[np.ndarray]:
    """``count`` random ``crop`` x ``crop`` crops of ``image`` (HxWx3)."""
    height, width = image.shape[:2]
    if min(height, width) < crop:
        raise ValueError(f'crop {crop} does not fit an image of {height}x{width}')
    tops = rng.integers(0, height - crop + 1, size=count)
    lefts = rng.integers(0, width - crop + 1, size=count)
    return [image[t:t + crop, left:left + crop] for t, left in zip(tops, lefts)]


def write_split(folder: Path, photos: Dict[str, np.ndarray], crop: int, per_image: int,
                rng: np.random.Generator) -> int:
    """Write the crops of ``photos`` as PNG files into ``folder``; return how many."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for name, image in photos.items():
        for index, patch in enumerate(random_crops(image, crop, per_image, rng)):
            path = folder / f'{name}_{index:03d}.png'
            if not cv2.imwrite(str(path), cv2.cvtColor(patch, cv2.COLOR_RGB2BGR)):
                raise OSError(f'could not write {path}')
            written += 1
    return written


def crop_names(photos: tuple, per_image: int) -> set:
    """The file names :func:`write_split` gives the crops of ``photos``."""
    return {f'{name}_{index:03d}.png' for name in photos for index in range(per_image)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out', type=Path, help='output folder, e.g. data/demo')
    parser.add_argument('--crop', type=int, default=96, help='crop side in pixels')
    parser.add_argument('--per-image', type=int, default=24, help='crops per photograph')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    if args.crop < 8 or args.per_image < 1:
        parser.error(f'--crop must be >= 8 and --per-image >= 1, got {args.crop}, '
                     f'{args.per_image}')
    expected = {'train': crop_names(TRAIN_PHOTOS, args.per_image),
                'val': crop_names(VAL_PHOTOS, args.per_image)}
    found = {split: {p.name for p in (args.out / split).glob('*.png')} for split in expected}
    if found == expected:
        print(f'demo data already in {args.out} ({len(found["train"])} train, '
              f'{len(found["val"])} val)')
        return
    for split, names in found.items():  # crops of an older photograph list
        for name in sorted(names - expected[split]):
            (args.out / split / name).unlink()
    rng = np.random.default_rng(args.seed)
    n_train = write_split(args.out / 'train', load_photos(TRAIN_PHOTOS), args.crop,
                          args.per_image, rng)
    n_val = write_split(args.out / 'val', load_photos(VAL_PHOTOS), args.crop, args.per_image,
                        rng)
    print(f'wrote {n_train} train and {n_val} val crops of {args.crop}px to {args.out}')


if __name__ == '__main__':
    main()
