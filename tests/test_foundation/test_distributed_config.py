"""CPU multi-process runs: SyncBN configs become per-process BN; GPU-less checks are strict."""
import pytest
from mmengine.config import Config

from mmpretrain_ebm.utils import adapt_config_to_cpu_distributed, replace_sync_batchnorm


def test_replace_sync_batchnorm_walks_nested_configs():
    cfg = Config(dict(model=dict(
        backbone=dict(type='ResNet', norm_cfg=dict(type='SyncBN', requires_grad=True)),
        decode_head=dict(norm_cfg=dict(type='SyncBN')),
        auxiliary_head=[dict(norm_cfg=dict(type='BN')), dict(norm_cfg=dict(type='MMSyncBN'))])))
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
