"""Throughput of the pretraining data pipeline per corruption, as one dataloader worker.

    python tools/analysis/benchmark_pipeline.py [--num-images 100] [--repeat 20] [--size 224]
        [--images ...]

Two tables, both at ``--size`` px, single-threaded like an mmengine dataloader worker (OpenCV,
OpenMP/BLAS and torch limited to one thread):

1. *Pipeline*: ``LoadImageFromFile`` (JPEG decoding) -> ``RandomResizedCrop`` ->
   ``RandomFlip`` -> corruption -> ``PackInputs``, against the same pipeline with
   ``RandomResizedCrop`` alone (no corruption). The target is a ratio of at most 2.
2. *Transforms*: on photos already decoded in memory, ``RandomResizedCrop`` followed by one
   corruption, against ``RandomResizedCrop`` alone: the corruption's own cost, without the
   decoding that dominates a real worker.

The corruptions are exactly those of the ImageNet pretraining configs
(``configs/ebm/*_in1k.py``, read with ``Config.fromfile``), each distinct one once and labelled
by its arguments (the shared ``mean``/``std`` left out); the mixed task is the configs' own
``MixedCorruption``. The photos are scikit-image's (saved as quality-90 JPEGs in a temporary
folder) unless ``--images`` names files. Each pipeline is timed ``--repeat`` times on
``--num-images`` images, interleaved with the others, and its fastest run is reported: many
short runs let the minimum find the quiet moments of a shared machine.
"""

import os

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ[_var] = '1'  # before numpy and torch start their thread pools

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Dict, List, Optional, Sequence  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmpretrain.registry import TRANSFORMS  # noqa: E402

import mmpretrain_ebm  # noqa: E402,F401  (registers the corruption transforms)

BASELINE = 'RandomResizedCrop alone'
SKIMAGE_PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'hubble_deep_field')
META_KEYS = ('img_path', 'ori_shape', 'img_shape', 'flip', 'corruption')

CONFIGS = Path(__file__).resolve().parents[2] / 'configs' / 'ebm'
CONFIG_GLOB = '*_in1k.py'  # the ImageNet pretraining configs, all at 224 px
NORM_KEYS = ('mean', 'std')  # shared by every config (img_norm); left out of the labels


def label(cfg: dict) -> str:
    """``cfg`` as a short name and its arguments, e.g. ``GridMask cell_size=16 mask_ratio=0.7``."""
    name = cfg['type'].replace('Corruption', '')
    if name == 'Mixed':
        parts = [' + '.join(label(c) for c in cfg['corruptions'])]
        parts += [f'{k}={v}' for k, v in cfg.items() if k not in ('type', 'corruptions')]
        return f'{name}: ' + ', '.join(parts)
    return ' '.join(
        [name] + [f'{k}={v}' for k, v in cfg.items() if k != 'type' and k not in NORM_KEYS]
    )


def config_corruptions() -> Dict[str, dict]:
    """Every distinct corruption of the training pipelines of ``configs/ebm/*_in1k.py``, by
    label, the mixes last."""
    found = {}
    for path in sorted(CONFIGS.glob(CONFIG_GLOB)):
        for cfg in Config.fromfile(path).train_dataloader.dataset.pipeline:
            if cfg['type'].endswith('Corruption'):
                found.setdefault(label(cfg), cfg.to_dict())
    if not found:
        raise FileNotFoundError(f'no corruption in any {CONFIGS / CONFIG_GLOB}')
    return dict(sorted(found.items(), key=lambda item: ('corruptions' in item[1], item[0])))


def largest_block(cfg: dict) -> int:
    """The largest grid cell or SR factor in ``cfg`` (mixes included): the smallest crop."""
    own = max(cfg.get('cell_size', 1), cfg.get('scale', 1))
    return max([own] + [largest_block(c) for c in cfg.get('corruptions', ())])


def parse_args(min_size: int, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options; ``--size`` must be at least ``min_size`` px."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--num-images', type=int, default=100, help='images per timed run (default %(default)s)'
    )
    parser.add_argument(
        '--repeat',
        type=int,
        default=20,
        help='timed runs per pipeline; the fastest counts (default %(default)s)',
    )
    parser.add_argument(
        '--size',
        type=int,
        default=224,
        help=f'crop size, at least {min_size} (default %(default)s)',
    )
    parser.add_argument(
        '--images',
        nargs='+',
        type=Path,
        help=f'image files (default: scikit-image {", ".join(SKIMAGE_PHOTOS)})',
    )
    args = parser.parse_args(argv)
    for option in ('num_images', 'repeat'):
        if getattr(args, option) < 1:
            parser.error(f'--{option.replace("_", "-")} must be >= 1, got {getattr(args, option)}')
    if args.size < min_size:
        parser.error(
            f'--size must be >= {min_size} (the largest grid cell / SR factor of the '
            f'configs), got {args.size}'
        )
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


def fastest_per_image(
    runners: Dict[str, Callable[[int], None]], num_images: int, repeat: int
) -> Dict[str, float]:
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
    widths = [max(map(len, per_image)), 8, 8, max(len(last_column), 8)]
    print(f'\n{title}\n')
    print('| ' + ' | '.join(c.ljust(w) for c, w in zip(columns, widths)) + ' |')
    print('|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    for name, seconds in per_image.items():
        ratio = (seconds - base) / base if own else seconds / base
        cells = [
            name,
            f'{1 / seconds:.0f}',
            f'{seconds * 1e3:.3f}',
            '' if name == BASELINE else f'{ratio:.2f}',
        ]
        print(
            '| '
            + ' | '.join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
            )
            + ' |'
        )


def main() -> None:
    corruptions = config_corruptions()
    args = parse_args(max(largest_block(cfg) for cfg in corruptions.values()))
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
        for name, cfg in corruptions.items():
            full[f'+ {name}'] = runner([build(c) for c in head + [cfg, pack]], from_file)
            alone[f'+ {name}'] = runner([build(crop), build(cfg)], from_memory)
        full_cost = fastest_per_image(full, args.num_images, args.repeat)
        alone_cost = fastest_per_image(alone, args.num_images, args.repeat)
    sizes = ', '.join(f'{p.shape[1]}x{p.shape[0]}' for p in photos)
    print(
        f'{args.size} px, one thread, fastest of {args.repeat} runs x {args.num_images} '
        f'images cycling over {len(paths)} photos ({sizes})'
    )
    print_table(
        '1. Pipeline: LoadImageFromFile (JPEG) -> RandomResizedCrop -> RandomFlip -> '
        'corruption -> PackInputs',
        full_cost,
        'cost / RRC-only pipeline',
        own=False,
    )
    print_table(
        '2. Transforms on decoded images: RandomResizedCrop -> corruption',
        alone_cost,
        'corruption / RRC',
        own=True,
    )


if __name__ == '__main__':
    main()
