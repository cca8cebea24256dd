"""Cut scikit-image's bundled sample photographs into the embedded demo dataset.

    python tools/dataset_converters/prepare_demo_data.py data/demo [--crop 96]
        [--per-image 24] [--seed 0]

Writes ``<out>/train/*.png`` and ``<out>/val/*.png`` (a folder layout that mmpretrain's
``CustomDataset`` reads with ``with_label=False``). Validation crops come from photographs that
the training split never sees, so restorations of them measure generalization. Runs in about
a second.

``<out>/prepare_demo_data.json`` records the settings and every file written (with its
SHA-256). A rerun with the same settings leaves a complete folder as it is; other settings, a
missing file or an interrupted run regenerate the crops. The tool deletes only files it
recorded and that are unchanged; anything else in ``train/`` or ``val/`` (another file, a
recorded name with other contents, a subfolder) makes it stop with an error listing them,
before it changes anything. A folder written by a version without the manifest is
regenerated when every entry of ``train/`` and ``val/`` has that version's names
(``<photograph>_<3 digits>.png``, with the photographs of this list or ``cat``), and refused
like any other folder otherwise.
"""

import argparse
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Set

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
TRAIN_PHOTOS = (
    'astronaut',
    'coffee',
    'chelsea',
    'rocket',
    'immunohistochemistry',
    'hubble_deep_field',
)
# the two views of a stereo pair: one scene that the training photographs do not show
VAL_PHOTOS = ('motorcycle_left', 'motorcycle_right')
SPLITS = {'train': TRAIN_PHOTOS, 'val': VAL_PHOTOS}
MANIFEST = 'prepare_demo_data.json'
# crop names of the versions without a manifest (whose validation split held skimage's cat)
LEGACY_NAME = re.compile(r'(%s)_\d{3}\.png' % '|'.join(map(re.escape, [*PHOTO_LOADERS, 'cat'])))
SHOWN = 10  # foreign entries listed in the error


class DemoDataError(RuntimeError):
    """The output folder cannot be (re)written without touching files of someone else."""


def load_photos(names: tuple) -> Dict[str, np.ndarray]:
    """Return the named sample photographs as HxWx3 uint8 RGB arrays."""
    photos = {}
    for name in names:
        image = PHOTO_LOADERS[name]()
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f'skimage.data.{name} is not an RGB photograph: {image.shape}')
        photos[name] = image
    return photos


def random_crops(
    image: np.ndarray, crop: int, count: int, rng: np.random.Generator
) -> List[np.ndarray]:
    """``count`` random ``crop`` x ``crop`` crops of ``image`` (HxWx3)."""
    height, width = image.shape[:2]
    if min(height, width) < crop:
        raise ValueError(f'crop {crop} does not fit an image of {height}x{width}')
    tops = rng.integers(0, height - crop + 1, size=count)
    lefts = rng.integers(0, width - crop + 1, size=count)
    return [image[t : t + crop, left : left + crop] for t, left in zip(tops, lefts)]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_split(
    out: Path,
    split: str,
    photos: Dict[str, np.ndarray],
    crop: int,
    per_image: int,
    rng: np.random.Generator,
) -> Dict[str, str]:
    """Write the crops of ``photos`` as PNG files into ``out/split``; return their
    ``split/name`` paths with their SHA-256."""
    (out / split).mkdir(parents=True, exist_ok=True)
    written = {}
    for name, image in photos.items():
        for index, patch in enumerate(random_crops(image, crop, per_image, rng)):
            relative = crop_name(split, name, index)
            if not cv2.imwrite(str(out / relative), cv2.cvtColor(patch, cv2.COLOR_RGB2BGR)):
                raise OSError(f'could not write {out / relative}')
            written[relative] = sha256(out / relative)
    return written


def crop_name(split: str, photo: str, index: int) -> str:
    return f'{split}/{photo}_{index:03d}.png'


def planned_files(per_image: int) -> Set[str]:
    """The ``split/name`` paths :func:`write_split` gives the crops."""
    return {
        crop_name(split, photo, index)
        for split, photos in SPLITS.items()
        for photo in photos
        for index in range(per_image)
    }


def read_manifest(out: Path) -> Optional[dict]:
    """The manifest of an earlier run, or None when ``out`` has none."""
    path = out / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
        if not (isinstance(manifest['settings'], dict) and isinstance(manifest['files'], dict)):
            raise TypeError('settings and files must be JSON objects')
    except (ValueError, KeyError, TypeError) as error:
        raise DemoDataError(
            f'{path} is not a manifest written by this tool ({error!r}); '
            'remove it or choose another output folder'
        ) from error
    return manifest


def write_manifest(
    out: Path, settings: dict, files: Dict[str, Optional[str]], complete: bool
) -> None:
    """Record ``files`` (path -> SHA-256, None while still being written), atomically."""
    out.mkdir(parents=True, exist_ok=True)
    temporary = out / f'.{MANIFEST}.tmp'
    temporary.write_text(
        json.dumps(
            dict(settings=settings, complete=complete, files=files), indent=1, sort_keys=True
        )
    )
    os.replace(temporary, out / MANIFEST)


def split_entries(out: Path) -> List[str]:
    """Every entry of ``out/train`` and ``out/val`` as ``split/name``."""
    entries = []
    for split in SPLITS:
        folder = out / split
        if folder.exists() and not folder.is_dir():
            raise DemoDataError(
                f'{folder} is a file; the tool writes the {split} crops into '
                'a folder of that name: choose another output folder'
            )
        if folder.is_dir():
            entries += [f'{split}/{path.name}' for path in folder.iterdir()]
    return entries


def is_ours(out: Path, entry: str, manifest: Optional[dict]) -> bool:
    """Whether the tool wrote ``entry``: recorded and unchanged (or recorded as being
    written by an interrupted run); without a manifest, a file of the old names."""
    path = out / entry
    if not path.is_file() or path.is_symlink():
        return False
    if manifest is None:
        return LEGACY_NAME.fullmatch(path.name) is not None
    if entry not in manifest['files']:
        return False
    recorded = manifest['files'][entry]
    return recorded is None or recorded == sha256(path)


def prepare(out: Path, crop: int, per_image: int, seed: int) -> str:
    """Make ``out`` hold the demo crops of these settings; return what was done."""
    settings = dict(
        crop=crop,
        per_image=per_image,
        seed=seed,
        **{split: list(photos) for split, photos in SPLITS.items()},
    )
    manifest = read_manifest(out)
    entries = split_entries(out)
    ours = {entry for entry in entries if is_ours(out, entry, manifest)}
    foreign = sorted(set(entries) - ours)
    if foreign:
        shown = ', '.join(foreign[:SHOWN]) + (
            f' and {len(foreign) - SHOWN} more' if len(foreign) > SHOWN else ''
        )
        raise DemoDataError(
            f'{out} holds files that this tool did not write (or that changed since it '
            f'wrote them): {shown}. Nothing was changed; move them out of {out}/train and '
            f'{out}/val, or choose another output folder.'
        )
    planned = planned_files(per_image)
    if manifest is None:
        reason = 'replacing the crops of an earlier version' if ours else 'new folder'
    elif manifest['settings'] != settings:
        reason = 'settings changed: ' + ', '.join(
            f'{key} {manifest["settings"].get(key)} -> {value}'
            for key, value in settings.items()
            if manifest['settings'].get(key) != value
        )
    elif not manifest.get('complete') or ours != planned:
        reason = 'completing an incomplete folder'
    else:
        return f'demo data already in {out} ({len(planned)} crops of {crop}px, seed {seed})'
    photos = {split: load_photos(names) for split, names in SPLITS.items()}
    smallest = min(min(image.shape[:2]) for images in photos.values() for image in images.values())
    if crop > smallest:
        raise DemoDataError(f'--crop {crop} does not fit the photographs: allowed 8 to {smallest}')
    for entry in ours:
        (out / entry).unlink()
    write_manifest(out, settings, dict.fromkeys(sorted(planned)), complete=False)
    rng = np.random.default_rng(seed)
    files = {}
    for split, split_photos in photos.items():
        files.update(write_split(out, split, split_photos, crop, per_image, rng))
    write_manifest(out, settings, files, complete=True)
    return f'wrote {len(files)} crops of {crop}px to {out} ({reason})'


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out', type=Path, help='output folder, e.g. data/demo')
    parser.add_argument('--crop', type=int, default=96, help='crop side in pixels')
    parser.add_argument('--per-image', type=int, default=24, help='crops per photograph')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.crop < 8 or args.per_image < 1:
        parser.error(f'--crop must be >= 8 and --per-image >= 1, got {args.crop}, {args.per_image}')
    try:
        print(prepare(args.out, args.crop, args.per_image, args.seed))
    except DemoDataError as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
