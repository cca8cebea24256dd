"""Held-out restoration gains over a small grid of step-size settings, on CPU in minutes.

    python tools/analysis/step_size_study.py [--sizes 32 64] [--iters 150]
        [--rules fixed:1 fixed:100 rms:0.1] [--alpha-lr-mults 1] [--params linear]
        [--work-dir work_dirs/step_size_study] [--seed 0]

Every cell pretrains the demo model (``--config``, by default the demo config: a 4-layer ViT,
the mixed corruption) from scratch for ``--iters`` iterations on the demo photographs
(``prepare_demo_data.py``; crops of 1.5x the resolution, at most 300 px, the smallest
photograph's side, made in the work directory), then
restores the held-out photographs (``val/``, a scene the training split never shows) under
each corruption of the mix and reports the PSNR gain of the last step over the corrupted
input (dB, mean over ``--num-images`` images). The grid:

- ``--sizes``: training and evaluation resolution (px), multiples of ``--patch-size`` (the
  ViT's patch side, 8 px as in the demo unless given; 16 px makes 224 px affordable on CPU).
- ``--rules``: initial alpha, ``fixed:<alpha>`` or ``rms:<target>`` (``InitialStepSizeHook``:
  alpha = target / RMS(dE/dx) on the first batch, target in normalized pixels).
- ``--alpha-lr-mults``: lr multiplier of alpha (``paramwise_cfg.custom_keys``).
- ``--params``: ``linear`` (the model's alpha) or ``log`` (a prototype here only: alpha =
  exp(log_alpha), so Adam changes alpha by a factor of about exp(lr) per step).

Prints a Markdown table (one row per cell: initial and final alpha, gain per corruption,
mean gain, seconds) and writes it with the raw numbers to ``<work-dir>/results.json``, which
also holds each corruption's first-step alignment (``step_alignment``: cosine between the
step and the needed restoration, their norm ratio, the uniform-shift share).
"""

import argparse
import itertools
import json
import math
import sys
import time
import uuid
from pathlib import Path
from typing import List, Optional

import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmpretrain.registry import MODELS
from torch import nn

import mmpretrain_ebm  # noqa: F401  (registers modules)
from mmpretrain_ebm.engine.hooks import InitialStepSizeHook
from mmpretrain_ebm.models import EnergyRestorationAlgorithm
from mmpretrain_ebm.visualization import (
    find_corruptions,
    mean_psnr,
    restoration_chains,
    step_alignment,
)

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / 'configs/ebm/ebm_vit-mini-p8_1xb16-mixed-coslr-400i_skimage-64px.py'
sys.path.insert(0, str(REPO / 'tools' / 'dataset_converters'))
from prepare_demo_data import prepare  # noqa: E402

MAX_CROP = 300  # the smallest side of the demo photographs (chelsea, 300 x 451)


@MODELS.register_module(force=True)
class LogAlphaEnergyRestoration(EnergyRestorationAlgorithm):
    """Study prototype: the step size is alpha = exp(log_alpha), a learnable 0-d parameter
    (state-dict key ``log_alpha``); ``self.alpha`` is that exponential (a tensor)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        value = self._parameters.pop('alpha', None)
        if value is None:
            raise ValueError('LogAlphaEnergyRestoration needs learnable_alpha=True')
        self.log_alpha = nn.Parameter(value.detach().log())

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp()

    def set_alpha(self, value: float) -> None:
        with torch.no_grad():
            self.log_alpha.fill_(math.log(value))


def parse_rule(rule: str):
    kind, _, value = rule.partition(':')
    if kind not in ('fixed', 'rms') or not value:
        raise ValueError(f'rule must be fixed:<alpha> or rms:<target>, got {rule!r}')
    number = float(value)
    if not (number > 0 and math.isfinite(number)):
        raise ValueError(f'the value of rule {rule!r} must be a finite number > 0')
    return kind, number


def cell_config(
    base: Config,
    data_root: str,
    size: int,
    iters: int,
    rule: str,
    lr_mult: float,
    param: str,
    work_dir: Path,
    seed: int,
    patch_size: Optional[int] = None,
) -> Config:
    """The demo config trained at ``size`` px for ``iters`` iterations with this alpha."""
    cfg = base.copy()
    cfg.work_dir = str(work_dir)
    # unique: mmengine reuses the logger of an experiment name (+ the start second), so a
    # runner of the same work_dir name started within that second would log into another
    cfg.experiment_name = f'{work_dir.name}_{uuid.uuid4().hex[:8]}'
    cfg.randomness = dict(seed=seed, diff_rank_seed=True)
    cfg.model.backbone.img_size = size
    if patch_size is not None:
        cfg.model.backbone.patch_size = patch_size
    if param == 'log':
        cfg.model.type = 'LogAlphaEnergyRestoration'
    kind, value = parse_rule(rule)
    custom_hooks = []
    if kind == 'fixed':
        cfg.model.alpha = value
    else:
        custom_hooks.append(dict(type='InitialStepSizeHook', target_rms=value))
    cfg.custom_hooks = custom_hooks
    dataset = cfg.train_dataloader.dataset
    dataset.data_root = data_root
    for transform in dataset.pipeline:
        if transform.type == 'RandomResizedCrop':
            transform.scale = size
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters)
    warmup = max(1, iters // 20)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup),
        dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False, begin=warmup, end=iters),
    ]
    keys = dict(cfg.optim_wrapper.get('paramwise_cfg', {}).get('custom_keys', {}))
    key = 'log_alpha' if param == 'log' else 'alpha'
    keys.pop('alpha', None)
    keys[key] = dict(lr_mult=lr_mult, decay_mult=0.0)
    cfg.optim_wrapper.paramwise_cfg = dict(custom_keys=keys)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=max(iters, 1))
    cfg.visualizer = dict(type='UniversalVisualizer', vis_backends=[])
    cfg.log_level = 'WARNING'
    return cfg


def held_out_gains(model, data_root: str, corruptions, size: int, num_images: int):
    """Per corruption: the last step's PSNR gain (dB) on held-out images, and how the first
    step aligns with the restoration it should make (``step_alignment``)."""
    paths = sorted(str(p) for p in (Path(data_root) / 'val').glob('*.png'))
    step = max(1, len(paths) // num_images)
    paths = paths[::step][:num_images]
    chains = restoration_chains(model, paths, corruptions, size, seed=0)
    psnr = mean_psnr(chains)
    gains, alignment = {}, {}
    for chain in chains:
        last = chain.num_steps
        gains[chain.corruption] = (
            psnr[f'{chain.corruption}/psnr_step{last}'] - psnr[f'{chain.corruption}/psnr_corrupted']
        )
        alignment[chain.corruption] = step_alignment(chain, 1)
    return gains, alignment


def data_crop(size: int) -> int:
    """Side (px) of the demo crops for training at ``size``: 1.5x, within [96, 300]."""
    return min(max(96, int(math.ceil(size * 1.5))), MAX_CROP)


def run(args: argparse.Namespace) -> List[dict]:
    base = Config.fromfile(str(args.config))
    corruption_cfgs = find_corruptions(base.train_dataloader.dataset.pipeline)
    rows = []
    cells = list(itertools.product(args.sizes, args.rules, args.alpha_lr_mults, args.params))
    for number, (size, rule, lr_mult, param) in enumerate(cells):
        crop = data_crop(size)
        data_root = args.work_dir / f'data_{crop}px'
        prepare(data_root, crop=crop, per_image=args.per_image, seed=0)
        name = f'{size}px_{rule.replace(":", "")}_lr{lr_mult:g}_{param}'
        cfg = cell_config(
            base,
            str(data_root),
            size,
            args.iters,
            rule,
            lr_mult,
            param,
            args.work_dir / name,
            args.seed,
            args.patch_size,
        )
        start = time.perf_counter()
        runner = Runner.from_cfg(cfg)
        model = runner.model
        configured = float(model.alpha.item())
        runner.train()
        hooks = [h for h in runner.hooks if isinstance(h, InitialStepSizeHook)]
        initial = hooks[0].record['alpha'] if hooks else configured
        gains, alignment = held_out_gains(
            model, str(data_root), corruption_cfgs, size, args.num_images
        )
        seconds = time.perf_counter() - start
        row = dict(
            size=size,
            patch_size=int(cfg.model.backbone.patch_size),
            rule=rule,
            lr_mult=lr_mult,
            param=param,
            alpha_initial=initial,
            alpha_final=float(model.alpha.item()),
            gains=gains,
            step1_alignment=alignment,
            mean_gain=sum(gains.values()) / len(gains),
            seconds=seconds,
        )
        rows.append(row)
        print(f'[{number + 1}/{len(cells)}] {name}: {format_row(row)}', flush=True)
    return rows


def format_row(row: dict) -> str:
    gains = ', '.join(f'{k} {v:+.2f}' for k, v in row['gains'].items())
    return (
        f'alpha {row["alpha_initial"]:.3g} -> {row["alpha_final"]:.3g}; {gains}; '
        f'mean {row["mean_gain"]:+.2f} dB; {row["seconds"]:.0f} s'
    )


def markdown(rows: List[dict]) -> str:
    corruptions = list(rows[0]['gains'])
    header = ['size / patch', 'initial alpha', 'alpha lr mult', 'param', 'alpha start -> end']
    header += [f'{c} (dB)' for c in corruptions] + ['mean (dB)', 's']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in rows:
        cells = [
            f'{row["size"]} px / {row["patch_size"]}',
            row['rule'],
            f'{row["lr_mult"]:g}',
            row['param'],
            f'{row["alpha_initial"]:.3g} -> {row["alpha_final"]:.3g}',
        ]
        cells += [f'{row["gains"][c]:+.2f}' for c in corruptions]
        cells += [f'{row["mean_gain"]:+.2f}', f'{row["seconds"]:.0f}']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', type=Path, default=DEMO_CONFIG)
    parser.add_argument('--sizes', type=int, nargs='+', default=[32, 64])
    parser.add_argument('--iters', type=int, default=150)
    parser.add_argument('--rules', nargs='+', default=['fixed:1', 'fixed:100', 'rms:0.1'])
    parser.add_argument('--alpha-lr-mults', type=float, nargs='+', default=[1.0])
    parser.add_argument('--params', nargs='+', default=['linear'], choices=['linear', 'log'])
    parser.add_argument('--patch-size', type=int, default=None)
    parser.add_argument('--num-images', type=int, default=8)
    parser.add_argument('--per-image', type=int, default=24)
    parser.add_argument('--work-dir', type=Path, default=Path('work_dirs/step_size_study'))
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    for rule in args.rules:
        parse_rule(rule)
    patch = 8 if args.patch_size is None else args.patch_size
    if patch < 1:
        parser.error(f'--patch-size must be >= 1, got {args.patch_size}')
    for size in args.sizes:
        if size < patch or size % patch or size > MAX_CROP:
            parser.error(
                f'--sizes must be multiples of the {patch}-px patch up to {MAX_CROP}, got {size}'
            )
    if args.iters < 2:
        parser.error(f'--iters must be >= 2, got {args.iters}')
    if any(not (m > 0) for m in args.alpha_lr_mults):
        parser.error(f'--alpha-lr-mults must be > 0, got {args.alpha_lr_mults}')
    if args.num_images < 1:
        parser.error(f'--num-images must be >= 1, got {args.num_images}')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    rows = run(args)
    table = markdown(rows)
    print(table)
    (args.work_dir / 'results.json').write_text(
        json.dumps(dict(argv=sys.argv[1:] if argv is None else argv, rows=rows), indent=1)
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
