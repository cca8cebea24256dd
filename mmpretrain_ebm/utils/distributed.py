"""Distributed set-up that also works on machines without a GPU."""

import logging
import os
import sys
from typing import Any

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import print_log

# what the env:// rendezvous of init_process_group reads; torchrun sets them
_TORCHRUN_VARIABLES = ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')


def replace_sync_batchnorm(node: Any) -> int:
    """Turn every ``type='SyncBN'`` norm config under ``node`` into ``'BN'``, in place.

    torch's SyncBatchNorm runs on GPUs only; on CPU processes each rank normalizes with its
    own batch statistics instead. Returns how many configs were changed.
    """
    changed = 0
    if isinstance(node, dict):
        if node.get('type') in ('SyncBN', 'MMSyncBN'):
            node['type'] = 'BN'
            changed += 1
        for value in node.values():
            changed += replace_sync_batchnorm(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            changed += replace_sync_batchnorm(value)
    return changed


def adapt_config_to_cpu_distributed(cfg: Config, launcher: str) -> None:
    """Let a multi-process run train on CPU with the gloo backend.

    mmengine's ``pytorch`` launcher pins every process to ``cuda:LOCAL_RANK`` and wraps the
    model with ``device_ids=[LOCAL_RANK]``; neither works without a GPU. When no GPU is visible
    this initializes the process group with gloo (so mmengine's runner finds it initialized
    and skips its own GPU set-up), builds the DDP wrapper with ``device_ids=None`` and, since
    SyncBatchNorm needs GPUs, replaces SyncBN norm configs with per-process BN and turns the
    runner's ``sync_bn`` conversion off (both logged). It does nothing for single-process runs
    or when a GPU is available.

    Args:
        cfg: the training or test config, modified in place.
        launcher: the ``--launcher`` argument of ``tools/train.py``.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise ValueError(
            f'CPU distributed runs support launcher="pytorch" only, got '
            f'launcher={launcher!r}; use tools/dist_train.sh on a machine '
            'without GPUs'
        )
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    dist_cfg['backend'] = 'gloo'
    wrapper_cfg = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper_cfg['device_ids'] = None
    wrapper_cfg.setdefault('broadcast_buffers', False)
    wrapper_cfg.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper_cfg
    replaced = replace_sync_batchnorm(cfg.model)
    if replaced:
        print_log(
            f'CPU distributed run: {replaced} SyncBN norm config(s) replaced by BN '
            '(SyncBatchNorm needs GPUs)',
            logger='current',
            level=logging.WARNING,
        )
    if cfg.get('sync_bn') is not None:
        print_log(
            f'CPU distributed run: sync_bn={cfg.sync_bn!r} turned off, BatchNorm stays '
            'per-process (SyncBatchNorm needs GPUs)',
            logger='current',
            level=logging.WARNING,
        )
        cfg.sync_bn = None
    if not torch_dist.is_initialized():
        missing = [name for name in _TORCHRUN_VARIABLES if name not in os.environ]
        if missing:
            raise RuntimeError(
                f'launcher="pytorch" needs the environment variables {missing}, which torchrun '
                'sets; start the run with tools/dist_train.sh (or tools/dist_test.sh) or '
                'torchrun, or use --launcher none for a single process'
            )
        torch_dist.init_process_group(
            backend='gloo', rank=int(os.environ['RANK']), world_size=int(os.environ['WORLD_SIZE'])
        )


def exit_cpu_distributed(launcher: str) -> None:
    """End a CPU (gloo) multi-process run cleanly; a no-op otherwise.

    At interpreter exit, a gloo process sometimes aborts with "terminate called without an
    active exception" (a native thread still joinable while static objects are destroyed),
    after all its work is done; torchrun then reports the whole run failed. So every rank
    waits for the others, tears the process group down, flushes its logs and leaves
    with ``os._exit(0)``, skipping the native destructors.
    """
    if launcher == 'none' or torch.cuda.is_available() or not torch_dist.is_initialized():
        return
    torch_dist.barrier()
    torch_dist.destroy_process_group()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
