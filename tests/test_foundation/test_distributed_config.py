"""CPU multi-process runs: SyncBN configs become per-process BN; GPU-less checks are strict."""

import socket

import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import MMLogger

from mmpretrain_ebm.utils import adapt_config_to_cpu_distributed, replace_sync_batchnorm


def test_replace_sync_batchnorm_walks_nested_configs():
    cfg = Config(
        dict(
            model=dict(
                backbone=dict(type='ResNet', norm_cfg=dict(type='SyncBN', requires_grad=True)),
                decode_head=dict(norm_cfg=dict(type='SyncBN')),
                auxiliary_head=[
                    dict(norm_cfg=dict(type='BN')),
                    dict(norm_cfg=dict(type='MMSyncBN')),
                ],
            )
        )
    )
    assert replace_sync_batchnorm(cfg.model) == 3
    assert cfg.model.backbone.norm_cfg == dict(type='BN', requires_grad=True)
    assert cfg.model.decode_head.norm_cfg.type == 'BN'
    assert [h.norm_cfg.type for h in cfg.model.auxiliary_head] == ['BN', 'BN']


def test_single_process_config_is_left_alone():
    cfg = Config(dict(model=dict(norm_cfg=dict(type='SyncBN'))))
    adapt_config_to_cpu_distributed(cfg, 'none')
    assert cfg.model.norm_cfg.type == 'SyncBN' and 'model_wrapper_cfg' not in cfg


def test_cpu_distributed_rejects_launchers_it_cannot_serve():
    with pytest.raises(ValueError, match="launcher='slurm'"):
        adapt_config_to_cpu_distributed(Config(dict(model=dict())), 'slurm')


@pytest.fixture
def cpu_process_group(monkeypatch):
    """A one-process gloo group, as ``torchrun --nproc_per_node 1`` on a GPU-less host gives."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    for name, value in dict(
        RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port)
    ).items():
        monkeypatch.setenv(name, value)
    yield
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def test_cpu_distributed_turns_runner_sync_bn_off(cpu_process_group, caplog):
    cfg = Config(dict(model=dict(norm_cfg=dict(type='SyncBN')), sync_bn='torch'))
    logger = MMLogger.get_current_instance()
    logger.addHandler(caplog.handler)
    try:
        adapt_config_to_cpu_distributed(cfg, 'pytorch')
    finally:
        logger.removeHandler(caplog.handler)
    assert cfg.sync_bn is None and cfg.model.norm_cfg.type == 'BN'
    assert torch_dist.get_backend() == 'gloo' and torch_dist.get_world_size() == 1
    assert "sync_bn='torch' turned off" in caplog.text


def test_pytorch_launcher_without_torchrun_names_the_missing_variables(
    cpu_process_group, monkeypatch
):
    monkeypatch.delenv('RANK')
    monkeypatch.delenv('MASTER_PORT')
    with pytest.raises(RuntimeError, match=r"\['RANK', 'MASTER_PORT'\].*dist_train.sh"):
        adapt_config_to_cpu_distributed(Config(dict(model=dict())), 'pytorch')
    assert not torch_dist.is_initialized()
