"""tools/train.py --amp: bf16 autocast by default, fp16 on request (with a warning), and the
config's AMP lines bf16 too."""

import importlib.util
from pathlib import Path

import pytest
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location('train_tool_amp', REPO / 'tools' / 'train.py')
train_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train_tool)

PRETRAIN = REPO / 'configs' / 'ebm' / 'ebm_deit-small-p16_8xb32-mixed-amp-coslr-200e_in1k.py'
PLAIN = REPO / 'configs' / 'ebm' / 'ebm_vit-mini-p8_1xb16-mixed-coslr-400i_skimage-64px.py'


@pytest.fixture(autouse=True)
def restore_local_rank(monkeypatch):
    monkeypatch.delenv('LOCAL_RANK', raising=False)


def merged(argv: list) -> Config:
    args = train_tool.parse_args(argv)
    return train_tool.merge_args(Config.fromfile(argv[0]), args)


@pytest.mark.parametrize(
    'extra, dtype', [(['--amp'], 'bfloat16'), (['--amp', 'bfloat16'], 'bfloat16')]
)
def test_amp_is_bf16_by_default(extra, dtype, recwarn):
    cfg = merged([str(PLAIN), *extra])
    assert cfg.optim_wrapper.type == 'EnergyAmpOptimWrapper'  # it checkpoints the fp16 scales
    assert cfg.optim_wrapper.dtype == dtype and cfg.optim_wrapper.loss_scale == 'dynamic'
    assert not [w for w in recwarn if 'fp16' in str(w.message)]


def test_amp_picks_the_energy_wrapper_by_class_not_name():
    from mmpretrain.registry import MODELS

    from mmpretrain_ebm.models import EnergyRestorationAlgorithm

    name = 'SubclassedEnergyAlgorithmForAmpTest'
    if MODELS.get(name) is None:

        @MODELS.register_module(name=name)
        class Subclassed(EnergyRestorationAlgorithm):
            pass

    args = train_tool.parse_args([str(PLAIN), '--amp'])
    config = Config.fromfile(str(PLAIN))
    config.model.type = name
    assert train_tool.merge_args(config, args).optim_wrapper.type == 'EnergyAmpOptimWrapper'
    config = Config.fromfile(str(PLAIN))
    config.model.type = MODELS.get(name)  # a class, as in new-style configs
    assert train_tool.merge_args(config, args).optim_wrapper.type == 'EnergyAmpOptimWrapper'
    config = Config.fromfile(str(PLAIN))
    config.model = dict(type='ImageClassifier', backbone=dict(type='ResNet', depth=18))
    assert train_tool.merge_args(config, args).optim_wrapper.type == 'AmpOptimWrapper'


def test_amp_float16_is_available_with_a_warning():
    with pytest.warns(UserWarning, match=r"dtype='float16' autocasts to fp16"):
        cfg = merged([str(PLAIN), '--amp', 'float16'])
    assert cfg.optim_wrapper.dtype == 'float16'


def test_amp_overrides_the_config_dtype():
    cfg = merged([str(PRETRAIN), '--amp', '--cfg-options', 'optim_wrapper.loss_scale=512.0'])
    assert cfg.optim_wrapper.dtype == 'bfloat16' and cfg.optim_wrapper.loss_scale == 512.0


def test_amp_wrapper_without_dtype_is_fp16_and_warns():
    with pytest.warns(UserWarning, match=r'dtype=None autocasts to fp16'):
        merged([str(PRETRAIN), '--cfg-options', 'optim_wrapper.dtype=None'])


def test_unknown_amp_dtype_is_refused(capsys):
    with pytest.raises(SystemExit):
        train_tool.parse_args([str(PLAIN), '--amp', 'float8'])
    assert "argument --amp: invalid choice: 'float8'" in capsys.readouterr().err


def amp_wrappers(cfg: Config):
    """Every AMP wrapper config in ``cfg`` (optim_wrapper, nested or not)."""
    optim = cfg.get('optim_wrapper')
    amp = ('AmpOptimWrapper', 'EnergyAmpOptimWrapper')
    return [optim] if optim is not None and optim.get('type') in amp else []


CONFIGS = sorted(
    p
    for p in (REPO / 'configs').rglob('*.py')
    if '_base_' not in p.parts and 'mmsegmentation' not in p.parts
) + sorted((REPO / 'configs' / 'benchmarks' / 'mmsegmentation').glob('upernet_*.py'))


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.name)
def test_configs_with_amp_autocast_to_bf16(path):
    wrappers = amp_wrappers(Config.fromfile(str(path)))
    for optim in wrappers:
        assert optim.dtype == 'bfloat16', path


def test_the_amp_configs_are_found():
    amp = [p for p in CONFIGS if amp_wrappers(Config.fromfile(str(p)))]
    assert len(amp) >= 20 and PRETRAIN in amp
