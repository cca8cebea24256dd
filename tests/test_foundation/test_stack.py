"""The installed stack is real: compiled mmcv ops, mmpretrain and mmseg models from configs."""

from pathlib import Path

import mmcv
import mmengine
import mmpretrain
import mmseg
import torch
import torchvision
from mmengine.config import Config

import mmpretrain_ebm


def upstream_config(package, relative: str) -> Config:
    """Load a config that ships inside an OpenMMLab package's ``.mim`` folder."""
    return Config.fromfile(str(Path(package.__file__).parent / '.mim' / 'configs' / relative))


def test_pinned_versions():
    assert torch.__version__.startswith('2.14.1')
    assert torchvision.__version__.startswith('0.29.1')
    assert mmengine.__version__ == '0.10.7'
    assert mmcv.__version__ == '2.1.0'
    assert mmpretrain.__version__ == '1.2.0'
    assert mmseg.__version__ == '1.2.2'
    assert isinstance(mmpretrain_ebm.__version__, str) and mmpretrain_ebm.__version__


def test_mmcv_compiled_ops_compute_nms():
    from mmcv.ops import nms

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    # IoU(box0, box1) = 81 / 119 > 0.5: box1 is suppressed, box2 does not overlap.
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]


def test_build_mmpretrain_vit_from_upstream_config():
    from mmpretrain.registry import MODELS

    cfg = upstream_config(mmpretrain, '_base_/models/vit-base-p16.py')
    cfg.model.backbone.update(arch='deit-tiny', img_size=32)
    cfg.model.head.in_channels = 192
    model = MODELS.build(cfg.model)
    logits = model(torch.rand(2, 3, 32, 32), mode='tensor')
    assert logits.shape == (2, 1000)


def test_build_mmseg_upernet_from_upstream_config():
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    cfg = upstream_config(mmseg, '_base_/models/upernet_r50.py')
    # Plain BN and a ResNet-18 keep the forward pass single-process and fast.
    norm_cfg = dict(type='BN', requires_grad=True)
    cfg.model.backbone.update(depth=18, norm_cfg=norm_cfg)
    cfg.model.decode_head.update(
        in_channels=[64, 128, 256, 512], channels=32, norm_cfg=norm_cfg, num_classes=5
    )
    cfg.model.auxiliary_head.update(in_channels=256, channels=16, norm_cfg=norm_cfg, num_classes=5)
    cfg.model.data_preprocessor.size = (64, 64)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        logits = model(torch.rand(1, 3, 64, 64), mode='tensor')
    assert logits.shape == (1, 5, 16, 16)
