"""A checkpoint written by our pretraining loads into the fine-tuning and linear-probe models."""

from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmpretrain.registry import MODELS

import mmpretrain_ebm  # noqa: F401  (registers the algorithm and the corruptions)

CONFIGS = Path(__file__).parents[2] / 'configs'
PRETRAIN = CONFIGS / 'ebm' / 'ebm_deit-small-p16_8xb32-gridmask16-amp-coslr-100e_in1k.py'
TRANSFER = [
    CONFIGS / 'benchmarks' / 'mmpretrain' / name
    for name in (
        'deit-small-p16_8xb128-amp-coslr-100e_in1k.py',
        'deit-small-p16_8xb2048-linear-coslr-90e_in1k.py',
    )
]
# DeiT-S shrunk to run in seconds on a CPU; the structure (and so the key names) is kept
TINY_VIT = dict(
    arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64), img_size=32
)


def build(cfg: Config) -> torch.nn.Module:
    init_default_scope(cfg.default_scope)
    return MODELS.build(dict(cfg.model, data_preprocessor=cfg.data_preprocessor))


@pytest.fixture(scope='module')
def pretrained_checkpoint(photo_crops_dir, tmp_path_factory) -> Path:
    """Train the ViT-S gridmask-16 config (shrunk, CPU, no AMP) for 2 iterations."""
    work_dir = tmp_path_factory.mktemp('pretrain')
    cfg = Config.fromfile(str(PRETRAIN))
    cfg.work_dir = str(work_dir)
    cfg.model.backbone.update(TINY_VIT)
    cfg.model.head.in_channels = 32
    pipeline = cfg.train_dataloader.dataset.pipeline
    pipeline[1].scale = 32  # RandomResizedCrop
    pipeline[3].cell_size = 8  # GridMaskCorruption
    cfg.train_dataloader.update(
        batch_size=4, num_workers=0, persistent_workers=False, pin_memory=False
    )
    cfg.train_dataloader.dataset = dict(
        type='CustomDataset', data_root=str(photo_crops_dir), with_label=False, pipeline=pipeline
    )
    cfg.optim_wrapper.type = 'OptimWrapper'  # AMP needs a GPU
    cfg.optim_wrapper.pop('loss_scale')
    cfg.optim_wrapper.pop('dtype', None)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=2)
    cfg.custom_hooks = []
    Runner.from_cfg(cfg).train()
    return work_dir / 'iter_2.pth'


@pytest.mark.parametrize('config', TRANSFER, ids=[p.stem for p in TRANSFER])
def test_pretrained_backbone_loads_completely(config, pretrained_checkpoint):
    checkpoint = torch.load(pretrained_checkpoint, map_location='cpu')
    pretrained = {
        key[len('backbone.') :]: value
        for key, value in checkpoint['state_dict'].items()
        if key.startswith('backbone.')
    }

    cfg = Config.fromfile(str(config))
    cfg.model.backbone.update(TINY_VIT)
    if 'frozen_stages' in cfg.model.backbone:  # linear probe: all layers frozen
        cfg.model.backbone.frozen_stages = TINY_VIT['arch']['num_layers']
    cfg.model.backbone.init_cfg.checkpoint = str(pretrained_checkpoint)
    cfg.model.head.in_channels = 32
    if cfg.model.get('neck'):
        cfg.model.neck.input_features = 32
    model = build(cfg)
    model.init_weights()  # runs the backbone's Pretrained init_cfg

    backbone = model.backbone.state_dict()
    assert set(backbone) == set(pretrained), set(backbone) ^ set(pretrained)
    for key, value in pretrained.items():
        torch.testing.assert_close(backbone[key], value, rtol=0, atol=0, msg=key)
    # a model that skips the loading differs: the equality above is the loading's doing
    fresh = build(cfg).backbone.state_dict()
    assert any(not torch.equal(fresh[key], value) for key, value in pretrained.items())
    logits = model(torch.rand(2, 3, 32, 32), mode='tensor')
    assert logits.shape == (2, 1000)
