"""Helpers of the Python API tests: the demo config shrunk to a 1-layer ViT and checkpoints
in the runner's format."""

from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

import mmpretrain_ebm  # noqa: F401  (registers the models, the model zoo and inference_model)

ROOT = Path(__file__).parents[2]
DEMO = ROOT / 'configs' / 'ebm' / 'ebm_vit-mini-p8_1xb16-mixed-coslr-400i_skimage-64px.py'


def tiny_demo_config() -> Config:
    """The demo config with a 1-layer, 32-d ViT (8-px patches, 64-px crops)."""
    cfg = Config.fromfile(str(DEMO))
    cfg.model.backbone.arch = dict(
        embed_dims=32, num_layers=1, num_heads=2, feedforward_channels=64
    )
    cfg.model.head.in_channels = 32
    return cfg


def save_checkpoint(cfg: Config, path: Path, seed: int = 0, alpha: float = 200.0) -> dict:
    """A randomly initialized model of ``cfg`` (seeded) saved as the runner saves it; returns
    its state dict. ``alpha`` differs from the config's, so only a loaded model has it."""
    init_default_scope('mmpretrain')
    torch.manual_seed(seed)
    model = MODELS.build(dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
    model.init_weights()
    state_dict = model.state_dict()
    if 'alpha' in state_dict:
        state_dict['alpha'] = torch.tensor(alpha)
    torch.save(dict(meta=dict(iter=1), state_dict=state_dict), path)
    return state_dict
