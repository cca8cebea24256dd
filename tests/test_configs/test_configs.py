"""Every config parses and builds its model; the recipes are the paper's (Table A)."""

from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

import mmpretrain_ebm  # noqa: F401  (registers the algorithm, head and corruptions)

ROOT = Path(__file__).parents[2]
CONFIGS = ROOT / 'configs'
LEAF_CONFIGS = sorted(p for p in CONFIGS.rglob('*.py') if '_base_' not in p.parts)
MMSEG_CONFIGS = [p for p in LEAF_CONFIGS if 'mmsegmentation' in p.parts]
OUR_CONFIGS = [p for p in LEAF_CONFIGS if p not in MMSEG_CONFIGS]
PRETRAIN_CONFIGS = [p for p in OUR_CONFIGS if p.parent.name == 'ebm' or p.parent == CONFIGS]
# the Fashion-MNIST study's (docs/results_fashion_mnist.md): energy and MAE pretraining,
# fine-tune, linear probe
FASHION_MNIST = [p for p in OUR_CONFIGS if '_fashion-mnist' in p.stem]
# issue 30's CIFAR-10 study (tests/test_configs/test_cifar10_configs.py checks their recipes)
CIFAR10 = [p for p in OUR_CONFIGS if '_cifar10' in p.stem]
DEMO = CONFIGS / 'ebm' / 'ebm_vit-mini-p8_1xb16-mixed-coslr-400i_skimage-64px.py'
# pretraining on the user's own folder of images (docs/training.md): not a paper setting
CUSTOM = CONFIGS / 'ebm' / 'ebm_deit-small-p16_1xb32-mixed-amp-coslr-200e_custom-folder.py'
IMAGENET_PRETRAIN = [
    p for p in PRETRAIN_CONFIGS if p not in (DEMO, CUSTOM, *FASHION_MNIST, *CIFAR10)
]
FINETUNE_CONFIGS = sorted(
    p
    for p in (CONFIGS / 'benchmarks' / 'mmpretrain').glob('*.py')
    if p not in (*FASHION_MNIST, *CIFAR10)
)

# what each ImageNet pretraining config must train: epochs and the corruption(s)
PAPER_SETTINGS = {
    'ebm_deit-small-p16_8xb32-gridmask16': (100, [('GridMaskCorruption', 'cell_size', 16)]),
    'ebm_deit-small-p16_8xb32-gridmask24': (100, [('GridMaskCorruption', 'cell_size', 24)]),
    'ebm_deit-small-p16_8xb32-gridmask32': (100, [('GridMaskCorruption', 'cell_size', 32)]),
    'ebm_deit-small-p16_8xb32-randmask-small': (
        100,
        [('RandomBoxMaskCorruption', 'preset', 'small')],
    ),
    'ebm_deit-small-p16_8xb32-randmask-large': (
        100,
        [('RandomBoxMaskCorruption', 'preset', 'large')],
    ),
    'ebm_deit-small-p16_8xb32-sr16': (100, [('SuperResolutionCorruption', 'scale', 16)]),
    'ebm_deit-small-p16_8xb32-sr32': (100, [('SuperResolutionCorruption', 'scale', 32)]),
    'ebm_deit-small-p16_8xb32-denoise': (100, [('DenoisingCorruption', 'gamma_range', (0.0, 1.0))]),
    'ebm_deit-small-p16_8xb32-colorize': (100, [('ColorizationCorruption', None, None)]),
}
MIXED = [
    ('RandomBoxMaskCorruption', 'preset', 'large'),
    ('SuperResolutionCorruption', 'scale', 16),
    ('DenoisingCorruption', None, None),
    ('ColorizationCorruption', None, None),
]
PAPER_SETTINGS.update(
    {
        'ebm_deit-small-p16_8xb32-mixed': (200, MIXED),
        'ebm_vit-base-p16_8xb256-mixed-amp-coslr-200e': (200, MIXED),
        'ebm_vit-base-p16_8xb256-mixed-amp-coslr-800e': (800, MIXED),
        'ebm_convnext-tiny_8xb32-mixed': (200, MIXED),
        'ebm_swin-tiny_8xb32-mixed': (200, MIXED),
        'ebm_vit-b_8xb256': (200, MIXED),
    }
)
# pretraining config -> fine-tuning configs that load its backbone
TRANSFER = {
    'ebm_deit-small-p16_8xb32-gridmask16-amp-coslr-100e_in1k.py': [
        'deit-small-p16_8xb128-amp-coslr-100e_in1k.py',
        'deit-small-p16_8xb2048-linear-coslr-90e_in1k.py',
    ],
    'ebm_deit-small-p16_8xb32-mixed-amp-coslr-200e_in1k.py': [
        'deit-small-p16_8xb128-amp-coslr-200e_in1k.py'
    ],
    'ebm_vit-base-p16_8xb256-mixed-amp-coslr-200e_in1k.py': [
        'vit-base-p16_8xb128-amp-coslr-100e_in1k.py',
        'vit-base-p16_8xb2048-linear-coslr-90e_in1k.py',
    ],
    'ebm_convnext-tiny_8xb32-mixed-amp-coslr-200e_in1k.py': [
        'convnext-tiny_8xb128-amp-coslr-100e_in1k.py'
    ],
    'ebm_swin-tiny_8xb32-mixed-amp-coslr-200e_in1k.py': ['swin-tiny_8xb128-amp-coslr-100e_in1k.py'],
}


def ids(paths):
    return [str(p.relative_to(CONFIGS)) for p in paths]


def load(path: Path) -> Config:
    return Config.fromfile(str(path))


def build_model(cfg: Config) -> torch.nn.Module:
    """Build ``cfg.model`` as mmengine's runner does (with the top-level data preprocessor)."""
    init_default_scope(cfg.default_scope)
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    return MODELS.build(model_cfg)


def settings_of(path: Path):
    matches = [key for key in PAPER_SETTINGS if path.stem.startswith(key)]
    assert len(matches) == 1, f'{path.name} matches {matches} in PAPER_SETTINGS'
    return PAPER_SETTINGS[matches[0]]


def test_the_config_lists_cover_every_file():
    assert (CONFIGS / 'ebm_vit-b_8xb256.py') in PRETRAIN_CONFIGS
    assert len(IMAGENET_PRETRAIN) == len(PAPER_SETTINGS)
    assert {p.name for p in FINETUNE_CONFIGS} == {n for v in TRANSFER.values() for n in v}


@pytest.mark.parametrize('path', MMSEG_CONFIGS, ids=ids(MMSEG_CONFIGS))
def test_mmseg_configs_parse(path):
    cfg = load(path)
    assert cfg.model.backbone.type


@pytest.mark.parametrize('path', OUR_CONFIGS, ids=ids(OUR_CONFIGS))
def test_config_builds_its_model_and_runs_one_image(path):
    """Full-size models, one image at the training size: widths and pooling fit."""
    cfg = load(path)
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.custom_imports == dict(imports=['mmpretrain_ebm'], allow_failed_imports=False)
    for loader in ('train_dataloader', 'val_dataloader'):
        if cfg.get(loader):
            assert cfg[loader].collate_fn == dict(type='default_collate')
    model = build_model(cfg).eval()
    size = cfg.model.backbone.get('img_size', cfg.model.get('input_size', 224))  # SparK's
    backbone = cfg.model.backbone  # MAEViT takes its channels through patch_cfg
    channels = backbone.get('in_channels', backbone.get('patch_cfg', {}).get('in_channels', 3))
    image = torch.rand(1, channels, size, size)
    with torch.no_grad():
        if cfg.model.type in ('MAE', 'SparK'):
            assert model.loss(image, [])['loss'].isfinite()
        elif path in PRETRAIN_CONFIGS:
            assert type(model).__name__ == 'EnergyRestorationAlgorithm'
            assert model.energy(image).shape == (1,)
        else:
            assert model(image, mode='tensor').shape == (1, cfg.model.head.num_classes)


@pytest.mark.parametrize('path', IMAGENET_PRETRAIN, ids=ids(IMAGENET_PRETRAIN))
def test_pretraining_config_follows_table_a_and_its_table(path):
    cfg = load(path)
    epochs, corruptions = settings_of(path)
    optim = cfg.optim_wrapper
    assert optim.type == 'EnergyAmpOptimWrapper'
    assert optim.optimizer == dict(type='AdamW', lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)
    assert optim.paramwise_cfg.custom_keys['alpha'] == dict(decay_mult=0.0)
    assert cfg.auto_scale_lr == dict(base_batch_size=256, enable=True)
    assert cfg.train_cfg.max_epochs == epochs
    warmup, cosine = cfg.param_scheduler  # docs/configs.md: a 5-epoch warm-up, then cosine
    assert (warmup.type, warmup.by_epoch, warmup.begin, warmup.end) == ('LinearLR', True, 0, 5)
    assert (cosine.type, cosine.by_epoch, cosine.begin, cosine.end) == (
        'CosineAnnealingLR',
        True,
        5,
        epochs,
    )
    assert cfg.model.num_steps == 2
    # compiled once: every batch has the configured shape
    assert cfg.model.grad_mode == 'compiled' and cfg.train_dataloader.drop_last
    assert cfg.model.learnable_alpha  # docs/algorithm.md: initial step size, set on the first batch
    assert cfg.custom_hooks[0] == dict(type='InitialStepSizeHook', target_rms=0.03)
    assert cfg.model.loss == dict(type='SmoothL1Loss', beta=1.0)

    pipeline = cfg.train_dataloader.dataset.pipeline
    kinds = [step.type for step in pipeline]
    corruption = pipeline[3]
    assert kinds == [
        'LoadImageFromFileOrSkip',
        'RandomResizedCrop',
        'RandomFlip',
        corruption.type,
        'PackInputs',
    ]
    assert 'corruption' in pipeline[-1].meta_keys
    parts = corruption.corruptions if corruption.type == 'MixedCorruption' else [corruption]
    assert len(parts) == len(corruptions)
    preprocessor = cfg.data_preprocessor
    for part, (kind, key, value) in zip(parts, corruptions):
        assert part.type == kind
        if key is not None:
            assert part[key] == value
        assert (part.mean, part.std) == (preprocessor.mean, preprocessor.std)
    assert preprocessor.type == 'SelfSupDataPreprocessor' and preprocessor.to_rgb


@pytest.mark.parametrize('path', FINETUNE_CONFIGS, ids=ids(FINETUNE_CONFIGS))
def test_finetune_config_loads_the_pretrained_backbone_with_table_a_recipe(path):
    cfg = load(path)
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint='', prefix='backbone.')
    if 'linear' in path.stem:
        assert cfg.optim_wrapper.optimizer.type == 'LARS'
        assert cfg.train_cfg.max_epochs == 90
        return
    optim = cfg.optim_wrapper
    assert optim.type == 'AmpOptimWrapper'
    assert optim.optimizer == dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05)
    assert optim.constructor == 'LearningRateDecayOptimWrapperConstructor'
    assert optim.paramwise_cfg.layer_decay_rate == 0.75
    # Table A's base lr read per 256 images (MAE's definition), as in pretraining
    assert cfg.auto_scale_lr == dict(base_batch_size=256, enable=True)
    assert cfg.train_dataloader.batch_size * 8 == 1024  # effective lr 4e-3
    assert cfg.model.backbone.drop_path_rate == 0.1
    assert cfg.model.head.loss == dict(
        type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'
    )
    assert cfg.model.train_cfg.augments == [
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ]
    randaug = next(t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'RandAugment')
    assert (randaug.magnitude_level, randaug.magnitude_std) == (9, 0.5)
    assert cfg.train_cfg.max_epochs == (200 if '200e' in path.stem else 100)
    assert cfg.param_scheduler[-1].end == cfg.train_cfg.max_epochs


@pytest.mark.parametrize('pretrain, finetune', [(p, f) for p, fs in TRANSFER.items() for f in fs])
def test_finetune_backbone_has_exactly_the_pretrained_parameters(pretrain, finetune):
    """Same names and shapes: loading with prefix='backbone.' leaves nothing missing."""
    source = build_model(load(CONFIGS / 'ebm' / pretrain)).backbone.state_dict()
    target = build_model(
        load(CONFIGS / 'benchmarks' / 'mmpretrain' / finetune)
    ).backbone.state_dict()
    assert {k: v.shape for k, v in target.items()} == {k: v.shape for k, v in source.items()}


def test_short_path_is_the_vit_b_mixed_recipe():
    short = load(CONFIGS / 'ebm_vit-b_8xb256.py')
    full = load(CONFIGS / 'ebm' / 'ebm_vit-base-p16_8xb256-mixed-amp-coslr-200e_in1k.py')
    assert short.to_dict() == full.to_dict()
    assert short.train_dataloader.batch_size == 256
    assert short.model.backbone.arch == 'base'


@pytest.mark.parametrize('path', LEAF_CONFIGS, ids=ids(LEAF_CONFIGS))
def test_tensorboard_as_the_docs_say_reaches_the_visualizer(path):
    """The TensorBoard instruction of docs/configs.md (``visualizer.vis_backends``) takes
    effect, and no top-level ``vis_backends`` variable invites an override that the visualizer
    never sees."""
    cfg = load(path)
    assert 'vis_backends' not in cfg
    backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
    cfg.merge_from_dict({'visualizer.vis_backends': backends})
    assert [b['type'] for b in cfg.visualizer.vis_backends] == [
        'LocalVisBackend',
        'TensorboardVisBackend',
    ]


def test_demo_sets_alpha_on_the_first_batch_as_every_pretraining_config():
    cfg = load(DEMO)
    assert cfg.model.learnable_alpha
    assert cfg.custom_hooks[0] == load(IMAGENET_PRETRAIN[0]).custom_hooks[0]
    assert cfg.custom_hooks[0].type == 'InitialStepSizeHook'


def test_demo_mixes_the_papers_four_corruptions_at_what_400_iterations_learn():
    """docs/demo.md ("Demo settings tried"): grid masking of one-patch cells at 50 % (+1.3 dB on
    the held-out photograph), SR 4x, denoising with g ~ U(0.5, 1), colorization, uniformly
    mixed; eager double backward (compiling costs what it saves in 400 iterations)."""
    cfg = load(DEMO)
    (mixed,) = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'MixedCorruption']
    assert mixed.get('weights') is None
    mask, sr, noise, colour = mixed.corruptions
    assert (mask.type, mask.cell_size, mask.mask_ratio) == ('GridMaskCorruption', 8, 0.5)
    assert (sr.type, sr.scale) == ('SuperResolutionCorruption', 4)
    assert (noise.type, tuple(noise.gamma_range)) == ('DenoisingCorruption', (0.5, 1.0))
    assert colour.type == 'ColorizationCorruption'
    assert cfg.train_cfg.max_iters == 400 and cfg.model.backbone.img_size == 64
    assert cfg.model.backbone.patch_size == mask.cell_size  # one cell per patch
    assert cfg.model.grad_mode == 'exact'
