"""The demo config shrunk for tests that run mmengine's ``Runner`` in process (tests import
this module as ``from demo_testing import tiny_demo_config``)."""

import uuid
from pathlib import Path

from mmengine.config import Config

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / 'configs' / 'ebm' / 'ebm_vit-mini-p8_1xb16-mixed-coslr-400i_skimage-64px.py'


def tiny_demo_config(data_dir: Path, work_dir: Path, max_iters: int) -> Config:
    """The demo config on the images in ``data_dir``: a 1-layer ViT 32 wide at 32 px, batch 4,
    ``max_iters`` iterations at a constant learning rate, a log line per iteration, the demo's
    custom hooks.

    The experiment name is unique. mmengine names a runner's logger and visualizer after the
    config file and the second the runner starts and returns an existing instance of that
    name, so a second runner of this config started within the same second would log into
    the first one's ``work_dir``.
    """
    cfg = Config.fromfile(str(DEMO))
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'{Path(work_dir).name}-{uuid.uuid4().hex[:8]}'
    cfg.model.backbone.update(
        arch=dict(embed_dims=32, num_layers=1, num_heads=2, feedforward_channels=64), img_size=32
    )
    cfg.model.head.in_channels = 32
    cfg.train_dataloader.dataset.pipeline[1].scale = 32  # RandomResizedCrop
    cfg.train_dataloader.batch_size = 4
    cfg.train_dataloader.dataset.update(data_root=str(data_dir), data_prefix='')
    cfg.train_cfg.max_iters = max_iters
    cfg.param_scheduler = []
    cfg.default_hooks.logger.interval = 1
    return cfg
