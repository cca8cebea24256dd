"""The installed stack is real: compiled mmcv ops, mmpretrain and mmseg models from configs.

In the venv of ``tools/setup_env.sh`` every version is the pin of requirements/constraints.txt
(of its level: mmcv-lite without mmseg at the core level, mmcv and mmseg at the full one);
in a user's environment (the second stack, ``tools/test_user_stack.sh``) each lies in the
ranges of ``mmpretrain_ebm/utils/requirements.py``, and what that stack lacks (mmcv-lite has
no compiled ops, mmseg is optional) is skipped with the reason.
"""

import sys
from importlib import metadata
from pathlib import Path

import mmcv
import mmpretrain
import pytest
import torch
from mmengine.config import Config
from packaging.version import Version

import mmpretrain_ebm
from mmpretrain_ebm.utils.requirements import REQUIREMENTS, SEG_MISSING, installed_version

REPO = Path(__file__).resolve().parents[2]
# written by tools/setup_env.sh into the venv it set up (and only there)
SETUP_STAMP = Path(sys.prefix) / '.mmpretrain_ebm-setup'
# pinned tools that their make target installs on demand, not tools/setup_env.sh (`make docs`)
ON_DEMAND = {'mkdocs'}


def upstream_config(package, relative: str) -> Config:
    """Load a config that ships inside an OpenMMLab package's ``.mim`` folder."""
    return Config.fromfile(str(Path(package.__file__).parent / '.mim' / 'configs' / relative))


def constraint_pins() -> dict:
    """``{distribution: version}`` of every ``name==version`` line of the constraints file."""
    pins = {}
    for line in (REPO / 'requirements' / 'constraints.txt').read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            name, version = line.split('==')
            pins[name] = version
    return pins


@pytest.mark.skipif(
    not SETUP_STAMP.is_file(), reason='not the venv of tools/setup_env.sh (no setup stamp)'
)
def test_setup_env_venv_has_exactly_the_pinned_stack():
    pins = constraint_pins()
    assert {
        'torch',
        'torchvision',
        'mmengine',
        'mmcv',
        'mmcv-lite',
        'mmpretrain',
        'mmsegmentation',
    } <= set(pins)
    level = SETUP_STAMP.read_text().split()[0]
    assert level in ('core', 'full')
    # mmcv and mmcv-lite write the same mmcv package: a venv holds exactly one of them
    absent = {'mmcv', 'mmsegmentation'} if level == 'core' else {'mmcv-lite'}
    expected = {name: version for name, version in pins.items() if name not in absent | ON_DEMAND}
    installed = {name: Version(metadata.version(name)).base_version for name in expected}
    assert installed == expected
    for name in absent:
        with pytest.raises(metadata.PackageNotFoundError):
            metadata.version(name)
    for name in ON_DEMAND & set(pins):  # at its pin once installed
        try:
            assert metadata.version(name) == pins[name], name
        except metadata.PackageNotFoundError:
            pass
    assert isinstance(mmpretrain_ebm.__version__, str) and mmpretrain_ebm.__version__


def test_installed_versions_lie_in_the_declared_ranges():
    for name, (distributions, low, high) in REQUIREMENTS.items():
        version = Version(Version(installed_version(name, distributions)).base_version)
        assert Version(low) <= version < Version(high), (name, version)
    assert Version(mmcv.__version__) == Version(installed_version('mmcv', ('mmcv', 'mmcv-lite')))


def mmcv_lite_installed() -> bool:
    try:
        metadata.version('mmcv-lite')
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(mmcv_lite_installed(), reason='mmcv-lite has no compiled ops (mmcv.ops)')
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
    mmseg = pytest.importorskip('mmseg', reason=SEG_MISSING)
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
