"""Throughput of the pretraining data pipeline per corruption, as one dataloader worker.

    python tools/analysis/benchmark_pipeline.py [--num-images 100] [--repeat 20] [--images ...]

Two tables, both at 224 px, single-threaded like an mmengine dataloader worker (OpenCV,
OpenMP/BLAS and torch limited to one thread):

1. *Pipeline*: ``LoadImageFromFile`` (JPEG decoding) -> ``RandomResizedCrop`` ->
   ``RandomFlip`` -> corruption -> ``PackInputs``, against the same pipeline with
   ``RandomResizedCrop`` alone (no corruption). The target is a ratio of at most 2.
2. *Transforms*: on photos already decoded in memory, ``RandomResizedCrop`` followed by one
   corruption, against ``RandomResizedCrop`` alone: the corruption's own cost, without the
   decoding that dominates a real worker.

The photos are scikit-image's (saved as quality-90 JPEGs in a temporary folder) unless
``--images`` names files. Each pipeline is timed ``--repeat`` times on ``--num-images``
images, interleaved with the others, and its fastest run is reported: many short runs let
the minimum find the quiet moments of a shared machine.
"""
import os

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ[_var] = '1'  # before numpy and torch start their thread pools

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Dict, List  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmpretrain.registry import TRANSFORMS  # noqa: E402

import mmpretrain_ebm  # noqa: E402,F401  (registers the corruption transforms)

BASELINE = 'RandomResizedCrop alone'
SKIMAGE_PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'hubble_deep_field')
META_KEYS = ('img_path', 'ori_shape', 'img_shape', 'flip', 'corruption')

CORRUPTIONS = {
    'GridMask 16 px, 70%': dict(type='GridMaskCorruption', cell_size=16, mask_ratio=0.7),
    'GridMask 24 px, 70%': dict(type='GridMaskCorruption', cell_size=24, mask_ratio=0.7),
    'RandomBoxMask small': dict(type='RandomBoxMaskCorruption', preset='small'),
    'RandomBoxMask large': dict(type='RandomBoxMaskCorruption', preset='large'),
    'SuperResolution 16x': dict(type='SuperResolutionCorruption', scale=16),
    'SuperResolution 24x': dict(type='SuperResolutionCorruption', scale=24),
    'Denoising': dict(type='DenoisingCorruption'),
    'Colorization': dict(type='ColorizationCorruption'),
    'Mixed (Table 3)': dict(type='MixedCorruption', corruptions=[
        dict(type='GridMaskCorruption', cell_size=16, mask_ratio=0.7),
        dict(type='SuperResolutionCorruption', scale=16),
        dict(type='DenoisingCorruption'),
        dict(type='ColorizationCorruption')]),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-images', type=int, default=100,
                        help='images per timed run (default %(default)s)')
    parser.add_argument('--repeat', type=int, default=20,
                        help='timed runs per pipeline; the fastest counts (default %(default)s)')
    parser.add_argument('--size', type=int, default=224, help='crop size (default 224)')
    parser.add_argument('--images', nargs='+', type=Path,
                        help=f'image files (default: scikit-image {", ".join(SKIMAGE_PHOTOS)})')
    args = parser.parse_args()
    if args.num_images < 1 or args.repeat < 1:
        parser.error('--num-images and --repeat must be positive')
    if args.images and not all(path.is_file() for path in args.images):
        parser.error(f'no such file(s): {[str(p) for p in args.images if not p.is_file()]}')
    return args


def write_skimage_jpegs(folder: Path) -> List[Path]:
    from skimage import data as skdata
    paths = []
    for name in SKIMAGE_PHOTOS:
        path = folder / f'{name}.jpg'
        photo = cv2.cvtColor(getattr(skdata, name)(), cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(path), photo, [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


def fastest_per_image(runners: Dict[str, Callable[[int], None]], num_images: int,
                      repeat: int) -> Dict[str, float]:
    """Seconds per image of each runner, the fastest of ``repeat`` interleaved runs."""
    best = {name: float('inf') for name in runners}
    np.random.seed(0)
    for _ in range(repeat):
        for name, run in runners.items():
            start = time.perf_counter()
            run(num_images)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: seconds / num_images for name, seconds in best.items()}


def runner(transforms: list, make_results: Callable[[int], dict]) -> Callable[[int], None]:
    def run(num_images: int) -> None:
        for index in range(num_images):
            results = make_results(index)
            for transform in transforms:
                results = transform(results)
    return run


def print_table(title: str, per_image: Dict[str, float], last_column: str, own: bool) -> None:
    """One markdown table; ``own``: show the extra cost relative to the baseline's own."""
    base = per_image[BASELINE]
    columns = ['pipeline', 'images/s', 'ms/image', last_column]
    widths = [30, 8, 8, max(len(last_column), 8)]
    print(f'\n{title}\n')
    print('| ' + ' | '.join(c.ljust(w) for c, w in zip(columns, widths)) + ' |')
    print('|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    for name, seconds in per_image.items():
        ratio = (seconds - base) / base if own else seconds / base
        cells = [name, f'{1 / seconds:.0f}', f'{seconds * 1e3:.3f}',
                 '' if name == BASELINE else f'{ratio:.2f}']
        print('| ' + ' | '.join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + ' |')


def main() -> None:
    args = parse_args()
    cv2.setNumThreads(0)
    torch.set_num_threads(1)
    build = TRANSFORMS.build
    crop = dict(type='RandomResizedCrop', scale=args.size)
    with tempfile.TemporaryDirectory() as folder:
        paths = [str(p) for p in (args.images or write_skimage_jpegs(Path(folder)))]
        photos = [cv2.imread(path, cv2.IMREAD_COLOR) for path in paths]

        def from_file(index: int) -> dict:
            return dict(img_path=paths[index % len(paths)])

        def from_memory(index: int) -> dict:
            photo = photos[index % len(photos)]
            return dict(img=photo, img_shape=photo.shape[:2], ori_shape=photo.shape[:2])

        head = [dict(type='LoadImageFromFile'), crop, dict(type='RandomFlip', prob=0.5)]
        pack = dict(type='PackInputs', meta_keys=META_KEYS)
        full = {BASELINE: runner([build(c) for c in head + [pack]], from_file)}
        alone = {BASELINE: runner([build(crop)], from_memory)}
        for name, cfg in CORRUPTIONS.items():
            full[f'+ {name}'] = runner([build(c) for c in head + [cfg, pack]], from_file)
            alone[f'+ {name}'] = runner([build(crop), build(cfg)], from_memory)
        full_cost = fastest_per_image(full, args.num_images, args.repeat)
        alone_cost = fastest_per_image(alone, args.num_images, args.repeat)
    sizes = ', '.join(f'{p.shape[1]}x{p.shape[0]}' for p in photos)
    print(f'{args.size} px, one thread, fastest of {args.repeat} runs x {args.num_images} '
          f'images cycling over {len(paths)} photos ({sizes})')
    print_table('1. Pipeline: LoadImageFromFile (JPEG) -> RandomResizedCrop -> RandomFlip -> '
                'corruption -> PackInputs', full_cost, 'cost / RRC-only pipeline', own=False)
    print_table('2. Transforms on decoded images: RandomResizedCrop -> corruption',
                alone_cost, 'corruption / RRC', own=True)


if __name__ == '__main__':
    main()
