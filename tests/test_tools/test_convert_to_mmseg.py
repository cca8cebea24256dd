"""tools/model_converters/ebm2mmseg.py: pretraining checkpoint -> mmseg backbone checkpoint.

The pretraining checkpoints are written as the runner writes them (state dict of an
``EnergyRestorationAlgorithm``, optimizer, message hub with its HistoryBuffers), with every
tensor randomized so that equality proves a tensor was carried over. DeiT-S, ConvNeXt-T and
Swin-T come at full size from the pretraining model configs in ``configs/_base_/models``;
the failure cases use a 32-channel ViT.
"""

import importlib.util
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import get_state_dict, weights_to_cpu

import mmpretrain_ebm  # noqa: F401  (registers the algorithm, allow-lists checkpoint types)
from mmpretrain_ebm.utils.requirements import SEG_MISSING

# The converter refuses to run without mmsegmentation (tests/test_foundation/test_requirements.py).
pytest.importorskip('mmseg', reason=SEG_MISSING)

REPO = Path(__file__).resolve().parents[2]
SEG_CONFIGS = REPO / 'configs' / 'benchmarks' / 'mmsegmentation'
VIT_B = SEG_CONFIGS / 'upernet_ebm-vit-base-p16_8xb2-amp-160k_ade20k-512x512.py'
DEIT_S = SEG_CONFIGS / 'upernet_ebm-deit-small-p16_8xb2-amp-160k_ade20k-512x512.py'
CONVNEXT_T = SEG_CONFIGS / 'upernet_ebm-convnext-tiny_8xb2-amp-160k_ade20k-512x512.py'
SWIN_T = SEG_CONFIGS / 'upernet_ebm-swin-tiny-p4-w7_8xb2-160k_ade20k-512x512.py'
PRETRAIN_MODELS = REPO / 'configs' / '_base_' / 'models'

TINY_VIT_ARCH = dict(embed_dims=32, num_layers=12, num_heads=2, feedforward_channels=64)
TINY_VIT_OPTIONS = {'model.backbone.arch': dict(_delete_=True, **TINY_VIT_ARCH)}


def load_converter():
    spec = importlib.util.spec_from_file_location(
        'ebm2mmseg', REPO / 'tools' / 'model_converters' / 'ebm2mmseg.py'
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ebm2mmseg = load_converter()


def build_in_scope(registry_name: str, cfg: dict) -> torch.nn.Module:
    """Build ``cfg`` from mmpretrain's or mmseg's MODELS with that default scope."""
    if registry_name == 'mmpretrain':
        from mmpretrain.registry import MODELS
    else:
        from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope(registry_name):
        return MODELS.build(cfg)


def write_pretraining_checkpoint(model_cfg: dict, path: Path, seed: int = 0) -> dict:
    """Save ``EnergyRestorationAlgorithm(model_cfg)`` as a runner checkpoint at ``path``.

    Every parameter is randomized first. Returns the saved state dict.
    """
    model = build_in_scope('mmpretrain', model_cfg)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    optimizer = torch.optim.AdamW(model.parameters())
    hub = MessageHub(name=f'pretraining-{path.stem}')
    hub.update_scalar('train/loss', 0.5)
    state = weights_to_cpu(get_state_dict(model))
    torch.save(
        dict(
            meta=dict(epoch=0, iter=7),
            state_dict=state,
            message_hub=hub.state_dict(),
            optimizer=optimizer.state_dict(),
        ),
        path,
    )
    assert isinstance(hub.state_dict()['log_scalars']['train/loss'], HistoryBuffer)
    return state


def pretraining_model(name: str, **backbone_overrides) -> dict:
    """The model of a pretraining model config (``configs/_base_/models/ebm_<name>.py``)."""
    model = Config.fromfile(str(PRETRAIN_MODELS / f'ebm_{name}.py')).model.to_dict()
    model['backbone'].update(backbone_overrides)
    return model


@pytest.fixture(scope='module')
def tiny_vit_checkpoint(tmp_path_factory) -> tuple:
    path = tmp_path_factory.mktemp('pretrain') / 'tiny_vit.pth'
    model = pretraining_model('deit-small-p16', arch=TINY_VIT_ARCH, img_size=32)
    model['head']['in_channels'] = 32
    return path, write_pretraining_checkpoint(model, path)


def seg_backbone(config: Path, checkpoint: Path = None, cfg_options: dict = None):
    """The backbone of an mmseg config; with ``checkpoint``, initialized from it by
    mmengine's ``Pretrained`` init, as at the start of training."""
    cfg = Config.fromfile(str(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    backbone_cfg = cfg.model.backbone
    backbone_cfg.init_cfg = (
        dict(type='Pretrained', checkpoint=str(checkpoint)) if checkpoint else None
    )
    backbone = build_in_scope('mmseg', backbone_cfg)
    if checkpoint:
        backbone.init_weights()
    return backbone


@pytest.mark.parametrize(
    'pretraining, config, added, dropped',
    [
        ('deit-small-p16', DEIT_S, [], ['ln2.weight', 'ln2.bias']),
        (
            'convnext-tiny',
            CONVNEXT_T,
            [f'norm{i}.{p}' for i in range(3) for p in ('weight', 'bias')],
            [],
        ),
        ('swin-tiny', SWIN_T, [f'norm{i}.{p}' for i in range(3) for p in ('weight', 'bias')], []),
    ],
)
def test_full_size_checkpoints_load_into_the_upernet_backbones(
    tmp_path, pretraining, config, added, dropped
):
    source = tmp_path / 'pretrain.pth'
    state = write_pretraining_checkpoint(pretraining_model(pretraining), source)
    out = tmp_path / 'backbone.pth'
    meta = ebm2mmseg.convert(config, source, out)

    assert meta['added_at_initialization'] == added
    assert meta['dropped_pooled_feature_norm'] == dropped
    assert meta['source_iter'] == 7
    converted = torch.load(out, map_location='cpu', weights_only=True)
    assert set(converted) == {'meta', 'state_dict'}  # no head, alpha, optimizer or hub
    weights = converted['state_dict']
    pretrained = {
        key[len('backbone.') :]: value
        for key, value in state.items()
        if key.startswith('backbone.')
    }
    assert set(weights) == (set(pretrained) - set(dropped)) | set(added)
    for key in set(weights) - set(added):
        assert torch.equal(weights[key], pretrained[key]), key

    # what training starts from: mmengine's Pretrained init of the config's backbone
    backbone = seg_backbone(config, out)
    loaded = backbone.state_dict()
    assert set(loaded) == set(weights)
    for key in set(weights) - set(added):
        if key == 'pos_embed':  # 224 px pretraining, 512 px crops: interpolated on load
            assert loaded[key].shape == (1, 1 + (512 // 16) ** 2, 384)
            assert weights[key].shape == (1, 1 + (224 // 16) ** 2, 384)
        else:
            assert torch.equal(loaded[key], pretrained[key]), key


def test_tiny_vit_for_the_vit_b_config(tmp_path, tiny_vit_checkpoint):
    source, state = tiny_vit_checkpoint
    out = tmp_path / 'vit.pth'
    ebm2mmseg.convert(VIT_B, source, out, TINY_VIT_OPTIONS)
    backbone = seg_backbone(VIT_B, out, TINY_VIT_OPTIONS)
    for key, value in backbone.state_dict().items():
        if key != 'pos_embed':
            assert torch.equal(value, state[f'backbone.{key}']), key


def converter_error(tmp_path, source, config=VIT_B, options=TINY_VIT_OPTIONS) -> str:
    """Convert expecting failure; check that nothing was written; return the message."""
    out = tmp_path / 'never_written.pth'
    with pytest.raises(ebm2mmseg.ConversionError) as error:
        ebm2mmseg.convert(config, source, out, options)
    assert not out.exists()
    assert not list(tmp_path.glob('.never_written.pth.*'))  # no temporary file left
    return str(error.value)


def test_refuses_a_checkpoint_of_another_arch(tmp_path, tiny_vit_checkpoint):
    options = {
        'model.backbone.arch': dict(
            TINY_VIT_OPTIONS['model.backbone.arch'], embed_dims=48, feedforward_channels=96
        )
    }
    message = converter_error(tmp_path, tiny_vit_checkpoint[0], options=options)
    assert 'size mismatch for layers.0.attn.qkv.weight' in message


def edited_checkpoint(tmp_path, source: Path, drop=(), add=None) -> Path:
    checkpoint = torch.load(source, map_location='cpu', weights_only=True)
    for key in drop:
        del checkpoint['state_dict'][key]
    checkpoint['state_dict'].update(add or {})
    path = tmp_path / 'edited.pth'
    torch.save(checkpoint, path)
    return path


def test_lists_missing_keys(tmp_path, tiny_vit_checkpoint):
    source = edited_checkpoint(
        tmp_path,
        tiny_vit_checkpoint[0],
        drop=['backbone.layers.3.ln1.weight', 'backbone.cls_token'],
    )
    message = converter_error(tmp_path, source)
    assert 'missing keys' in message
    assert 'layers.3.ln1.weight' in message and 'cls_token' in message


def test_lists_unexpected_keys(tmp_path, tiny_vit_checkpoint):
    source = edited_checkpoint(
        tmp_path, tiny_vit_checkpoint[0], add={'backbone.extra_proj.weight': torch.ones(2)}
    )
    message = converter_error(tmp_path, source)
    assert 'unexpected keys' in message and 'extra_proj.weight' in message


def test_adds_only_stage_norms_absent_as_a_whole(tmp_path):
    """A half-present stage norm is a broken checkpoint, not one to complete."""
    model = pretraining_model(
        'convnext-tiny', arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 32, 64])
    )
    model['head']['in_channels'] = 64
    source = tmp_path / 'convnext.pth'
    write_pretraining_checkpoint(model, source)
    source = edited_checkpoint(tmp_path, source, add={'backbone.norm1.weight': torch.ones(16)})
    options = {
        'model.backbone.arch': dict(_delete_=True, depths=[1, 1, 1, 1], channels=[8, 16, 32, 64])
    }
    message = converter_error(tmp_path, source, CONVNEXT_T, options)
    assert 'missing keys' in message and 'norm1.bias' in message


def test_refuses_a_checkpoint_that_is_not_from_pretraining(tmp_path, tiny_vit_checkpoint):
    converted = tmp_path / 'converted.pth'
    ebm2mmseg.convert(VIT_B, tiny_vit_checkpoint[0], converted, TINY_VIT_OPTIONS)
    message = converter_error(tmp_path, converted)
    assert "no 'backbone.' tensors" in message and 'already converted' in message
    assert 'does not exist' in converter_error(tmp_path, tmp_path / 'missing.pth')


def test_never_overwrites_by_accident(tmp_path, tiny_vit_checkpoint):
    source = tiny_vit_checkpoint[0]
    out = tmp_path / 'backbone.pth'
    out.write_bytes(b'a user file')
    with pytest.raises(ebm2mmseg.ConversionError, match='pass --overwrite'):
        ebm2mmseg.convert(VIT_B, source, out, TINY_VIT_OPTIONS)
    assert out.read_bytes() == b'a user file'
    with pytest.raises(ebm2mmseg.ConversionError, match='is the pretraining checkpoint'):
        ebm2mmseg.convert(VIT_B, source, source, TINY_VIT_OPTIONS, overwrite=True)
    ebm2mmseg.convert(VIT_B, source, out, TINY_VIT_OPTIONS, overwrite=True)
    assert 'state_dict' in torch.load(out, map_location='cpu', weights_only=True)


def test_checks_out_before_any_work(tmp_path, tiny_vit_checkpoint, capsys):
    source = tiny_vit_checkpoint[0]
    folder = tmp_path / 'checkpoints'
    folder.mkdir()
    (tmp_path / 'a_file').write_bytes(b'x')
    for out, overwrite, message in [
        (folder, False, 'is a directory'),
        (folder, True, 'is a directory'),
        (tmp_path / 'a_file' / 'backbone.pth', True, 'a_file is a file, not a folder'),
    ]:
        with pytest.raises(ebm2mmseg.ConversionError, match=message):
            ebm2mmseg.convert(VIT_B, source, out, TINY_VIT_OPTIONS, overwrite=overwrite)
    assert capsys.readouterr().out == ''  # not even read the checkpoint
    assert list(folder.iterdir()) == [] and (tmp_path / 'a_file').read_bytes() == b'x'
    out = tmp_path / 'backbone.pth'
    out.write_bytes(b'a user file')
    assert ebm2mmseg.main([str(VIT_B), str(source), str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.out == '' and 'pass --overwrite' in captured.err
    assert ebm2mmseg.main([str(VIT_B), str(source), str(folder), '--overwrite']) == 1
    assert f'OUT {folder} is a directory' in capsys.readouterr().err


def test_leaves_the_default_scope_as_it_was(tmp_path, tiny_vit_checkpoint):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        ebm2mmseg.convert(VIT_B, tiny_vit_checkpoint[0], tmp_path / 'out.pth', TINY_VIT_OPTIONS)
        assert DefaultScope.get_current_instance().scope_name == 'mmpretrain'


def test_command_line(tmp_path, tiny_vit_checkpoint, capsys):
    # a user's config for their own arch: our ViT-B config with the 32-channel ViT
    config = tmp_path / 'upernet_tiny-vit.py'
    arch = TINY_VIT_OPTIONS['model.backbone.arch']
    config.write_text(f'_base_ = {str(VIT_B)!r}\nmodel = dict(backbone=dict(arch={arch!r}))\n')
    source = str(tiny_vit_checkpoint[0])
    out = tmp_path / 'cli.pth'
    assert ebm2mmseg.main([str(config), source, str(out)]) == 0
    printed = capsys.readouterr().out
    for step in ('[1/4] reading', '[2/4] extracting', '[3/4] loading', '[4/4] writing'):
        assert step in printed
    assert 'ln2.weight' in printed and 'no missing or unexpected keys' in printed
    assert ebm2mmseg.main([str(config), source, str(out)]) == 1
    assert 'pass --overwrite' in capsys.readouterr().err
    # --cfg-options reach the config: ViT-S's arch does not fit this checkpoint
    assert (
        ebm2mmseg.main(
            [
                str(VIT_B),
                source,
                str(tmp_path / 'deit.pth'),
                '--cfg-options',
                'model.backbone.arch=deit-small',
            ]
        )
        == 1
    )
    assert 'size mismatch' in capsys.readouterr().err
