"""The UperNet ADE20K configs of configs/benchmarks/mmsegmentation at full size.

Each builds the real model (AMP's optimizer wrapper needs a GPU, so the fp32 wrapper is
built in its place: same constructor, same parameter groups) and segments a small image;
the recipes are checked parameter by parameter.
"""

import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from mmpretrain_ebm.utils.requirements import SEG_MISSING

pytest.importorskip('mmseg', reason=SEG_MISSING)

REPO = Path(__file__).resolve().parents[2]
SEG_CONFIGS = REPO / 'configs' / 'benchmarks' / 'mmsegmentation'
VIT_B = 'upernet_ebm-vit-base-p16_8xb2-amp-160k_ade20k-512x512.py'
DEIT_S = 'upernet_ebm-deit-small-p16_8xb2-amp-160k_ade20k-512x512.py'
CONVNEXT_T = 'upernet_ebm-convnext-tiny_8xb2-amp-160k_ade20k-512x512.py'
SWIN_T = 'upernet_ebm-swin-tiny-p4-w7_8xb2-160k_ade20k-512x512.py'
ALL_CONFIGS = (VIT_B, DEIT_S, CONVNEXT_T, SWIN_T)


def load(name: str) -> Config:
    return Config.fromfile(str(SEG_CONFIGS / name))


def build_model_and_optimizer(cfg: Config):
    """The segmentor (no pretrained weights) and its optimizer's parameter groups."""
    from mmseg.registry import MODELS

    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.init_cfg = None
    optim_cfg = cfg.optim_wrapper.copy()
    if optim_cfg.type == 'AmpOptimWrapper':
        optim_cfg.type = 'OptimWrapper'
        optim_cfg.pop('loss_scale')
        optim_cfg.pop('dtype', None)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
        groups = build_optim_wrapper(model, optim_cfg).optimizer.param_groups
    return model, groups


def groups_by_name(model, groups) -> dict:
    """Parameter name -> its group; each trainable parameter must be in exactly one."""
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    by_name = {}
    for group in groups:
        for parameter in group['params']:
            assert names[id(parameter)] not in by_name
            by_name[names[id(parameter)]] = group
    assert set(by_name) == {name for name, p in model.named_parameters() if p.requires_grad}
    return by_name


@pytest.fixture(scope='module', params=ALL_CONFIGS)
def built(request):
    cfg = load(request.param)
    model, groups = build_model_and_optimizer(cfg)
    return request.param, cfg, model, groups


def test_ade20k_160k_recipe(built):
    name, cfg, model, _ = built
    assert cfg.default_scope == 'mmseg'
    assert {'mmpretrain.models', 'mmpretrain_ebm'} <= set(cfg.custom_imports.imports)
    assert cfg.model.backbone.type.startswith('mmpretrain.')
    assert cfg.model.backbone.init_cfg.type == 'Pretrained'
    assert cfg.model.data_preprocessor.size == (512, 512)
    assert cfg.model.decode_head.num_classes == cfg.model.auxiliary_head.num_classes == 150
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.param_scheduler[-1].end == 160000
    assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs = 16, as mmseg's recipes
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        assert loader.dataset.type == 'ADE20KDataset'
        assert loader.dataset.reduce_zero_label is True
        assert loader.collate_fn.type == 'pseudo_collate'
    crop = next(t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'RandomCrop')
    assert crop.crop_size == (512, 512)
    # AMP where mmseg's recipe has it (MAE, ConvNeXt), fp32 for Swin as mmseg's Swin
    assert cfg.optim_wrapper.type == ('OptimWrapper' if name == SWIN_T else 'AmpOptimWrapper')


def test_segments_an_image(built):
    _, _, model, _ = built
    model.eval()
    with torch.no_grad():
        logits = model(torch.rand(1, 3, 64, 64) * 255, mode='tensor')
    assert logits.shape == (1, 150, 16, 16)
    assert torch.isfinite(logits).all()


def test_vit_s_is_deit_s():
    model, _ = build_model_and_optimizer(load(DEIT_S))
    backbone = model.backbone
    assert backbone.embed_dims == 384 and len(backbone.layers) == 12
    assert backbone.layers[0].attn.num_heads == 6
    assert model.neck.upsample_4x[0].in_channels == 384


@pytest.mark.parametrize('name', [VIT_B, DEIT_S])
def test_vit_layer_wise_lr_decay(name):
    """lr = 1e-4 * 0.65 ** (13 - depth) with mmpretrain's depths; no weight decay for norms,
    biases, the cls token and the position embedding; full lr for neck and heads."""
    model, groups = build_model_and_optimizer(load(name))
    for parameter_name, group in groups_by_name(model, groups).items():
        depth, num_depths = model.backbone.get_layer_depth(parameter_name, 'backbone.')
        assert num_depths == 14
        assert group['lr'] == pytest.approx(1e-4 * 0.65 ** (num_depths - 1 - depth), rel=1e-12), (
            parameter_name
        )
        parameter = model.get_parameter(parameter_name)
        no_decay = parameter.ndim == 1 or parameter_name.endswith(('cls_token', 'pos_embed'))
        assert group['weight_decay'] == (0.0 if no_decay else 0.05), parameter_name
    by_name = groups_by_name(model, groups)
    assert by_name['backbone.patch_embed.projection.weight']['lr'] == pytest.approx(1e-4 * 0.65**13)
    assert by_name['backbone.layers.11.attn.qkv.weight']['lr'] == pytest.approx(1e-4 * 0.65)
    assert by_name['decode_head.conv_seg.weight']['lr'] == pytest.approx(1e-4)


def test_convnext_stage_wise_lr_decay():
    """docs/ade20k.md: stage-wise decay 0.9. mmseg's stage-wise rule with num_layers=6 (8 ids): the
    stem and downsampling layers are id 0, stage i is id i + 1, the rest id 7, and
    lr = 1e-4 * 0.9 ** (7 - id)."""
    model, groups = build_model_and_optimizer(load(CONVNEXT_T))
    by_name = groups_by_name(model, groups)
    for stage in range(4):
        assert by_name[f'backbone.stages.{stage}.0.depthwise_conv.weight']['lr'] == pytest.approx(
            1e-4 * 0.9 ** (6 - stage), rel=1e-12
        )
    assert by_name['backbone.downsample_layers.0.0.weight']['lr'] == pytest.approx(
        1e-4 * 0.9**7, rel=1e-12
    )
    assert by_name['decode_head.conv_seg.weight']['lr'] == pytest.approx(1e-4, rel=1e-12)
    for parameter_name, group in by_name.items():
        parameter = model.get_parameter(parameter_name)
        assert group['weight_decay'] == (0.0 if parameter.ndim == 1 else 0.05), parameter_name


def test_swin_weight_decay():
    model, groups = build_model_and_optimizer(load(SWIN_T))
    for parameter_name, group in groups_by_name(model, groups).items():
        no_decay = 'norm' in parameter_name or 'relative_position_bias_table' in parameter_name
        assert group['weight_decay'] == (0.0 if no_decay else 0.01), parameter_name
        assert group['lr'] == pytest.approx(6e-5)


@pytest.mark.parametrize(
    'name, rate', [(VIT_B, 0.1), (DEIT_S, 0.1), (CONVNEXT_T, 0.4), (SWIN_T, 0.3)]
)
def test_drop_path_rate_is_the_docs_table(name, rate):
    assert load(name).model.backbone.drop_path_rate == rate
