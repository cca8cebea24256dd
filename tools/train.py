"""Train (pretrain or fine-tune) a model from a config with mmengine's runner.

Same command-line interface as MMPretrain's ``tools/train.py``; on a machine without GPUs,
``--launcher pytorch`` (``tools/dist_train.sh``) runs on CPU processes with gloo.
"""

import argparse
import os
import os.path as osp
import warnings
from typing import List, Optional

from mmengine.config import Config, ConfigDict, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmpretrain.registry import MODELS

import mmpretrain_ebm  # noqa: F401  (registers modules, checkpoint allow-list)
from mmpretrain_ebm.models import EnergyRestorationAlgorithm
from mmpretrain_ebm.utils import adapt_config_to_cpu_distributed, exit_cpu_distributed

#: Autocast dtypes that ``--amp`` accepts: bf16 first, the default.
AMP_DTYPES = ('bfloat16', 'float16')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint; without a path, from the latest checkpoint in '
        'the work directory',
    )
    parser.add_argument(
        '--amp',
        nargs='?',
        const='bfloat16',
        choices=AMP_DTYPES,
        help="mixed precision: AmpOptimWrapper with this autocast dtype (default 'bfloat16'; "
        "'float16' for GPUs without bf16), overriding the config's optim_wrapper type and dtype",
    )
    parser.add_argument(
        '--no-validate', action='store_true', help='do not evaluate checkpoints during training'
    )
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the actual total batch size',
    )
    parser.add_argument(
        '--no-pin-memory', action='store_true', help='disable pin_memory in the dataloaders'
    )
    parser.add_argument(
        '--no-persistent-workers',
        action='store_true',
        help='disable persistent_workers in the dataloaders',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as key=value pairs; lists as key="[a,b]"',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command-line arguments to the config."""
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:  # the energy model's wrapper also checkpoints its fp16 energy scales
        energy_model = is_energy_model(cfg.get('model', {}).get('type'))
        cfg.optim_wrapper.type = 'EnergyAmpOptimWrapper' if energy_model else 'AmpOptimWrapper'
        cfg.optim_wrapper.dtype = args.amp
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    # after --cfg-options: they may change num_workers, which decides persistent_workers
    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(field)
        if loader is None:
            continue
        defaults = ConfigDict(
            pin_memory=True, persistent_workers=True, collate_fn=dict(type='default_collate')
        )
        defaults.update(loader)
        if args.no_pin_memory:
            defaults.pin_memory = False
        if args.no_persistent_workers or defaults.get('num_workers', 0) == 0:
            defaults.persistent_workers = False
        cfg[field] = defaults
    warn_on_fp16(cfg)
    return cfg


def is_energy_model(model_type) -> bool:
    """Whether a config's ``model.type`` (a registered name or a class) is
    :class:`EnergyRestorationAlgorithm` or a subclass of it."""
    cls = MODELS.get(model_type) if isinstance(model_type, str) else model_type
    return isinstance(cls, type) and issubclass(cls, EnergyRestorationAlgorithm)


def warn_on_fp16(cfg: Config) -> None:
    """fp16 autocast (``AmpOptimWrapper``'s default dtype) is less accurate than bf16 here:
    the gradient entering the fp16 double backward shrinks with the batch (docs/algorithm.md,
    "Mixed precision")."""
    optim = cfg.get('optim_wrapper') or {}
    amp = optim.get('type') in ('AmpOptimWrapper', 'EnergyAmpOptimWrapper')
    if amp and optim.get('dtype') in (None, 'float16'):
        warnings.warn(
            f'optim_wrapper: {optim.get("type")} with dtype={optim.get("dtype")!r} autocasts to '
            'fp16, whose energy-model gradients lose accuracy as the batch grows '
            "(docs/algorithm.md, Mixed precision); prefer dtype='bfloat16' (--amp) where the "
            'GPU has bf16',
            stacklevel=2,
        )


def main() -> None:
    args = parse_args()
    cfg = merge_args(Config.fromfile(args.config), args)
    adapt_config_to_cpu_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()
    exit_cpu_distributed(args.launcher)


if __name__ == '__main__':
    main()
