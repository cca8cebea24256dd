"""Write one PNG grid: a few images (rows) under every corruption of the paper (columns).

These are the inputs of the paper's Figures 3 (masking) and 4 (restoration)::

    python tools/visualization/browse_corruptions.py                 # scikit-image photos
    python tools/visualization/browse_corruptions.py --images a.jpg b.jpg --out grid.png

Each image is resized (short edge) and centre-cropped to ``--size`` px, then corrupted by
the registered transforms with mmpretrain's ImageNet normalization statistics. Corrupted
views are float (denoising leaves 0..255); they are clipped to 0..255 for display only.
"""

import argparse
from pathlib import Path
from typing import List, Tuple

import cv2
import mmcv
import numpy as np
from mmpretrain.registry import TRANSFORMS

import mmpretrain_ebm  # noqa: F401  (registers the corruption transforms)

SKIMAGE_PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket')

#: (column title, transform config): Table 1 (masking) and Table 2 (restoration) settings.
COLUMNS = (
    ('Gridded (16) 70%', dict(type='GridMaskCorruption', cell_size=16, mask_ratio=0.7)),
    ('Gridded (32) 70%', dict(type='GridMaskCorruption', cell_size=32, mask_ratio=0.7)),
    ('Random small', dict(type='RandomBoxMaskCorruption', preset='small')),
    ('Random large', dict(type='RandomBoxMaskCorruption', preset='large')),
    ('SR 8x', dict(type='SuperResolutionCorruption', scale=8)),
    ('SR 16x', dict(type='SuperResolutionCorruption', scale=16)),
    ('Denoising', dict(type='DenoisingCorruption')),
    ('Colorization', dict(type='ColorizationCorruption')),
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--images',
        nargs='+',
        type=Path,
        help=f'image files (default: scikit-image {", ".join(SKIMAGE_PHOTOS)})',
    )
    parser.add_argument(
        '--out',
        type=Path,
        default=Path('work_dirs/corruptions.png'),
        help='PNG to write (default: %(default)s)',
    )
    parser.add_argument('--size', type=int, default=224, help='crop size in px (default 224)')
    parser.add_argument('--seed', type=int, default=0, help='numpy seed (default 0)')
    return parser.parse_args()


def load_images(paths: List[Path]) -> List[Tuple[str, np.ndarray]]:
    """(name, BGR uint8 image) pairs: the given files, else scikit-image's photos."""
    if paths:
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            raise FileNotFoundError(f'no such image file(s): {missing}')
        return [(path.stem, mmcv.imread(str(path), channel_order='bgr')) for path in paths]
    from skimage import data as skdata

    return [
        (name, cv2.cvtColor(getattr(skdata, name)(), cv2.COLOR_RGB2BGR)) for name in SKIMAGE_PHOTOS
    ]


def render_grid(images: List[np.ndarray], size: int, gap: int = 4, header: int = 28) -> np.ndarray:
    """A BGR uint8 grid: one row per image, the clean crop then one column per corruption."""
    resize = [
        TRANSFORMS.build(dict(type='ResizeEdge', scale=size, edge='short')),
        TRANSFORMS.build(dict(type='CenterCrop', crop_size=size)),
    ]
    corruptions = [TRANSFORMS.build(cfg) for _, cfg in COLUMNS]
    titles = ['Clean'] + [title for title, _ in COLUMNS]
    rows = len(images)
    canvas = np.full(
        (header + rows * (size + gap), len(titles) * (size + gap) - gap, 3), 255, np.uint8
    )
    for column, title in enumerate(titles):
        cv2.putText(
            canvas,
            title,
            (column * (size + gap) + 4, header - 9),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    for row, img in enumerate(images):
        results = dict(img=img, img_shape=img.shape[:2])
        for transform in resize:
            results = transform(results)
        crop = results['img']
        views = [crop] + [corruption.corrupt(crop) for corruption in corruptions]
        top = header + row * (size + gap)
        for column, view in enumerate(views):
            left = column * (size + gap)
            canvas[top : top + size, left : left + size] = np.clip(np.rint(view), 0, 255)
    return canvas


def main() -> None:
    args = parse_args()
    if args.size < 32:
        raise ValueError(f'--size must be at least 32 px (the largest cell), got {args.size}')
    named = load_images(args.images)
    np.random.seed(args.seed)
    grid = render_grid([img for _, img in named], args.size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.out), grid):
        raise OSError(f'could not write {args.out}')
    print(
        f'wrote {args.out}: {len(named)} images ({", ".join(n for n, _ in named)}) x '
        f'{len(COLUMNS)} corruptions, {grid.shape[1]}x{grid.shape[0]} px'
    )


if __name__ == '__main__':
    main()
