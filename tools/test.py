"""Evaluate a checkpoint with a config (fine-tune, linear-probe or restoration configs).

Same command-line interface as MMPretrain's ``tools/test.py`` for the common options.
"""

import argparse
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, DictAction
from mmengine.evaluator import DumpResults
from mmengine.runner import Runner

import mmpretrain_ebm  # noqa: F401  (registers modules, checkpoint allow-list)
from mmpretrain_ebm.utils import adapt_config_to_cpu_distributed, exit_cpu_distributed


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (evaluate) a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the evaluation metrics')
    parser.add_argument('--out', help='dump the predictions to this pickle file')
    parser.add_argument('--amp', action='store_true', help='test with mixed precision')
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
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        parser.error(f'--out must end with .pkl or .pickle, got {args.out!r}')
    return args


def build_config(args: argparse.Namespace) -> Config:
    """The config with the command-line arguments applied; checked after ``--cfg-options``."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.get('test_dataloader') is None:
        raise SystemExit(
            f'{args.config} defines no test_dataloader; pretraining configs have '
            'nothing to evaluate: test a fine-tune or linear-probe config'
        )
    if cfg.get('model', {}).get('type') == 'EnergyRestorationAlgorithm':
        raise SystemExit(
            f'{args.config} is a pretraining config: its test pipeline serves inference only '
            '(docs/api.md) and pretraining has no metric to evaluate; test a fine-tune '
            'or linear-probe config'
        )
    if cfg.test_dataloader.get('num_workers', 0) == 0:  # DataLoader refuses it then
        cfg.test_dataloader.persistent_workers = False
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.amp:
        cfg.test_cfg.fp16 = True
    return cfg


def main() -> None:
    args = parse_args()
    cfg = build_config(args)
    adapt_config_to_cpu_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    if args.out is not None:
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    runner.test()
    exit_cpu_distributed(args.launcher)


if __name__ == '__main__':
    main()
