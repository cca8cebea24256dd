"""Draw restoration chains of a pretrained energy model on your own images.

    python tools/visualization/vis_restoration.py CONFIG CHECKPOINT IMAGE_OR_FOLDER [...]
        [--out-dir vis_restoration] [--corruption-index I ...] [--img-size S] [--seed 0]
        [--max-images 8] [--device cpu] [--overwrite] [--combined]
        [--cfg-options key=value ...]

For every corruption of the config's training pipeline (each part of a ``MixedCorruption``),
writes ``<out-dir>/<corruption>.png``: one row per image, columns corrupted, step 1..N,
clean, each restored image labelled with its PSNR against the clean one; with
``--combined``, one figure of them all, ``<out-dir>/restorations.png``. Images are
resized (short edge) and center-cropped to the training crop size. Existing figures are
kept unless ``--overwrite`` is given. A command line over
:class:`mmpretrain_ebm.apis.RestorationInferencer` (docs/api.md).
"""

import argparse
from pathlib import Path
from typing import List, Optional

from mmengine.config import Config, DictAction

import mmpretrain_ebm  # noqa: F401  (registers the algorithm, corruptions, allow-list)
from mmpretrain_ebm.apis import RestorationInferencer, list_images
from mmpretrain_ebm.apis.restoration import COMBINED_FIGURE, OutputsExistError, figure_file
from mmpretrain_ebm.visualization import find_corruptions, step_alignment


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='pretraining config file')
    parser.add_argument('checkpoint', help='checkpoint of that config (runner checkpoint)')
    parser.add_argument('images', nargs='+', help='image files and/or folders of images')
    parser.add_argument('--out-dir', default='vis_restoration', help='output folder')
    parser.add_argument(
        '--corruption-index',
        type=int,
        nargs='+',
        help="draw only these corruptions (0-based, in the pipeline's order)",
    )
    parser.add_argument(
        '--img-size', type=int, help='square image side; default: the training crop size'
    )
    parser.add_argument('--seed', type=int, default=0, help='seed of the corruptions')
    parser.add_argument(
        '--max-images',
        type=int,
        default=8,
        help='use at most this many images: the first of all files given '
        'or found, sorted by path, each once',
    )
    parser.add_argument('--device', default='cpu', help='e.g. cpu or cuda:0')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace existing <out-dir>/<corruption>.png figures',
    )
    parser.add_argument(
        '--combined',
        action='store_true',
        help='one figure of every corruption (<out-dir>/restorations.png) instead of one each',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as key=value pairs',
    )
    return parser.parse_args()


def collect_images(inputs: List[str], max_images: int) -> List[str]:
    """The first ``max_images`` of the image files given directly or found (non-recursively)
    in the given folders, all sorted by path together, each once."""
    paths = []
    for item in map(Path, inputs):
        if item.is_dir():
            paths += map(Path, list_images(item))
        elif item.is_file():
            paths.append(item)
        else:
            raise FileNotFoundError(f'{item} is neither an image file nor a folder')
    if max_images < 1:
        raise ValueError(f'--max-images must be >= 1, got {max_images}')
    return [str(p) for p in sorted(set(paths))[:max_images]]


def select(corruptions: List[dict], indices: List[int]) -> List[dict]:
    """The corruptions at ``indices``; every index must exist, each given once."""
    if indices is None:
        return corruptions
    names = [f'{i}: {c["type"]}' for i, c in enumerate(corruptions)]
    bad = [i for i in indices if not 0 <= i < len(corruptions)]
    if bad:
        raise ValueError(f'--corruption-index {bad} out of range; the config has {names}')
    repeated = sorted({i for i in indices if indices.count(i) > 1})
    if repeated:
        raise ValueError(
            f'--corruption-index {repeated} given more than once; give each index once'
        )
    return [corruptions[i] for i in indices]


def check_img_size(img_size: int) -> int:
    """``img_size`` if it is a usable image side (>= 1 px)."""
    if img_size < 1:
        raise ValueError(f'--img-size must be >= 1 px, got {img_size}')
    return img_size


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    corruptions = select(
        find_corruptions(cfg.train_dataloader.dataset.pipeline), args.corruption_index
    )
    img_size: Optional[int] = None if args.img_size is None else check_img_size(args.img_size)
    image_paths = collect_images(args.images, args.max_images)

    inferencer = RestorationInferencer(cfg, pretrained=args.checkpoint, device=args.device)
    try:
        chains = inferencer(
            image_paths,
            return_datasamples=True,
            batch_size=len(image_paths),
            corruption=corruptions,
            img_size=img_size,
            seed=args.seed,
            out_dir=args.out_dir,
            overwrite=args.overwrite,
            title=Path(args.checkpoint).name,
            combined=args.combined,
        )
    except OutputsExistError as err:
        raise OutputsExistError(
            err.paths,
            f'{err.paths} exist; pass --overwrite to replace them, or choose another --out-dir',
        ) from None
    for chain in chains:
        path = Path(args.out_dir) / figure_file(chain.corruption)
        if args.combined:
            path = f'{Path(args.out_dir) / COMBINED_FIGURE} ({chain.corruption})'
        psnr = chain.mean_psnr()  # over the images the corruption changed
        unchanged = len(image_paths) - int(chain.changed.sum())
        print(
            f'{path}: {len(image_paths)} images, PSNR {psnr[0]:.2f} dB corrupted -> '
            f'{psnr[-1]:.2f} dB after {chain.num_steps} steps ({psnr[-1] - psnr[0]:+.2f} dB'
            + (f'; {unchanged} left unchanged, not counted)' if unchanged else ')')
        )
        for step in range(1, chain.num_steps + 1):
            align = step_alignment(chain, step)
            print(
                f'  step {step}: cos(step, clean - input) {align["cos"]:+.3f}, '
                f'|step| / |clean - input| {align["ratio"]:.3f} (an image gains iff '
                f'cos > ratio / 2), uniform shift {100 * align["shift"]:.0f} % of |step|^2'
            )


if __name__ == '__main__':
    main()
