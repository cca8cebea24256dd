"""The CIFAR-10 configs (issue 30): models, corruptions at 32 px, the online k-NN line, and the
data pipelines on tiny generated data, as class folders and as the official pickles."""

import pickle
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope
from mmpretrain.datasets import CIFAR10
from mmpretrain.registry import DATASETS, HOOKS, MODELS

import mmpretrain_ebm  # noqa: F401  (registers the algorithm, corruptions, hooks, split)

ROOT = Path(__file__).parents[2]
CONFIGS = ROOT / 'configs'
# the ViT study's configs (the ConvNeXt ones: test_convnet_cifar10_configs.py)
CIFAR10_CONFIGS = sorted(
    p for p in CONFIGS.rglob('*vit-mini-p4*_cifar10*.py') if '_base_' not in p.parts
)
PRETRAIN = [p for p in CIFAR10_CONFIGS if p.parent.name in ('ebm', 'mae')]
ENERGY = [p for p in PRETRAIN if p.parent.name == 'ebm']
CLASSIFY = [p for p in CIFAR10_CONFIGS if p.parent.name == 'mmpretrain']
SOURCE = CONFIGS / '_base_' / 'datasets' / 'cifar10_source.py'
MEAN, STD = [125.31, 122.95, 113.87], [62.99, 62.09, 66.70]  # RGB, of the training images

# corruptions of each energy config (at 32 px: a grid cell and SR pixel per 4-px patch)
CORRUPTIONS = {
    'gridmask': [('GridMaskCorruption', dict(cell_size=4, mask_ratio=0.5))],
    'randmask-large': [('RandomBoxMaskCorruption', dict(preset='large'))],
    'sr4': [('SuperResolutionCorruption', dict(scale=4))],
    'denoise': [('DenoisingCorruption', {})],
    'colorize': [('ColorizationCorruption', {})],
}
CORRUPTIONS['mixed'] = [
    CORRUPTIONS['randmask-large'][0],
    CORRUPTIONS['sr4'][0],
    CORRUPTIONS['denoise'][0],
    CORRUPTIONS['colorize'][0],
]
CLASSES = 10
PER_CLASS = 6


def ids(paths):
    return [p.name for p in paths]


def load(path: Path) -> Config:
    return Config.fromfile(str(path))


def build_model(cfg: Config) -> torch.nn.Module:
    init_default_scope(cfg.default_scope)
    return MODELS.build(dict(cfg.model, data_preprocessor=cfg.data_preprocessor))


def total_loss(losses: dict) -> torch.Tensor:
    """What mmengine optimizes: the sum of the ``loss*`` entries (energy: ``loss_step{n}``)."""
    return sum(value for key, value in losses.items() if key.startswith('loss'))


def corruption_parts(cfg: Config) -> list:
    corruption = cfg.train_dataloader.dataset.pipeline[-2]
    return corruption.corruptions if corruption.type == 'MixedCorruption' else [corruption]


# ---------------------------------------------------------------- tiny data, both formats
def red_image(rng) -> np.ndarray:
    """A 32-px RGB image whose red channel is bright and the others dark, with noise."""
    image = rng.integers(0, 60, (32, 32, 3)).astype(np.uint8)
    image[..., 0] += 190
    return image


@pytest.fixture(scope='module')
def folders(tmp_path_factory) -> Path:
    """data/cifar10 as the tarball gives it: train/ and test/ class folders of JPEGs."""
    root = tmp_path_factory.mktemp('cifar10_folders')
    rng = np.random.default_rng(0)
    for split in ('train', 'test'):
        for label in range(CLASSES):
            folder = root / split / f'class{label}'
            folder.mkdir(parents=True)
            for index in range(PER_CLASS):
                rgb = red_image(rng)
                assert cv2.imwrite(str(folder / f'{index:04d}.jpg'), rgb[..., ::-1])
    return root


@pytest.fixture(scope='module')
def pickles(tmp_path_factory) -> Path:
    """The official python release's layout and format (cifar-10-batches-py), tiny."""
    root = tmp_path_factory.mktemp('cifar10_official')
    batches = root / 'cifar-10-batches-py'
    batches.mkdir()
    rng = np.random.default_rng(1)
    names = [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']
    for name in names:
        labels = [label for label in range(CLASSES) for _ in range(PER_CLASS // 2 + 1)]
        images = np.stack([red_image(rng) for _ in labels])  # N x 32 x 32 x 3, RGB
        entry = {
            'batch_label': name,
            'labels': labels,
            'data': images.transpose(0, 3, 1, 2).reshape(len(labels), -1),  # rows of R, G, B
            'filenames': [f'{name}_{i}.png' for i in range(len(labels))],
        }
        (batches / name).write_bytes(pickle.dumps(entry))
    meta = {'label_names': list(CIFAR10.METAINFO['classes'])}
    (batches / 'batches.meta').write_bytes(pickle.dumps(meta))
    return root


@pytest.fixture
def official_configs(tmp_path, monkeypatch) -> Path:
    """A copy of configs/ with cifar10_source.py switched to the official release exactly as
    its comment says (the four commented lines replace the four above them). The fake
    pickles cannot have the official md5 sums that CIFAR10 checks; that check is skipped."""
    copy = tmp_path / 'configs'
    shutil.copytree(CONFIGS, copy)
    text = SOURCE.read_text()
    block = re.search(r'replace the four lines above by\n((?:# .*\n){4})', text)
    assert block, 'cifar10_source.py lost its commented alternative'
    new_lines = [line[2:] for line in block.group(1).splitlines()]
    old = ['train_set = ', 'test_set = ', 'load_steps = ', 'channel_order = ']
    lines = text.splitlines()
    for prefix, new in zip(old, new_lines):
        assert new.startswith(prefix)
        (index,) = [i for i, line in enumerate(lines) if line.startswith(prefix)]
        lines[index] = new
    (copy / '_base_' / 'datasets' / 'cifar10_source.py').write_text('\n'.join(lines) + '\n')
    monkeypatch.setattr(CIFAR10, '_check_integrity', lambda self: True)
    return copy


def small_splits(dataset_cfg: dict, num_per_class=2, holdout=2) -> dict:
    """A ClassBalancedSplit config cut to the tiny data."""
    dataset_cfg = dict(dataset_cfg, holdout_per_class=holdout)
    if dataset_cfg['part'] == 'train':
        dataset_cfg['num_per_class'] = num_per_class
    return dataset_cfg


def set_root(cfg: Config, root: Path) -> None:
    """Point every dataset of ``cfg`` at ``root`` (configs keep 'data/cifar10')."""
    text = cfg.pretty_text.replace("'data/cifar10'", repr(str(root)))
    cfg.merge_from_dict(Config.fromstring(text, '.py').to_dict())


# ---------------------------------------------------------------- the configs themselves
def test_the_cifar10_configs_are_all_here():
    assert [p.name for p in ENERGY] == sorted(
        f'ebm_vit-mini-p4_1xb256-{name}-coslr-10e_cifar10.py' for name in CORRUPTIONS
    )
    assert [p.name for p in PRETRAIN if p not in ENERGY] == [
        'mae_vit-mini-p4_1xb256-coslr-10e_cifar10.py'
    ]
    assert ids(CLASSIFY) == [
        'vit-mini-p4_1xb128-coslr-100e_cifar10-k100.py',
        'vit-mini-p4_1xb256-coslr-10e_cifar10-full.py',
        'vit-mini-p4_1xb256-linear-coslr-30e_cifar10-k1000.py',
    ]


@pytest.mark.parametrize('path', CIFAR10_CONFIGS, ids=ids(CIFAR10_CONFIGS))
def test_config_builds_its_model_and_runs_one_image(path):
    cfg = load(path)
    model = build_model(cfg)
    backbone = cfg.model.backbone
    assert backbone.arch == dict(
        embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512
    )
    assert (backbone.img_size, backbone.patch_size) == (32, 4)  # 64 tokens
    assert (cfg.data_preprocessor.mean, cfg.data_preprocessor.std) == (MEAN, STD)
    assert cfg.data_preprocessor.to_rgb  # files are read as BGR
    torch.manual_seed(0)
    image = torch.randn(1, 3, 32, 32)
    if cfg.model.type == 'MAE':
        assert model.loss(image, [])['loss'].isfinite()
    elif path in ENERGY:
        assert model.energy(image).shape == (1,)
        loss = model.loss([image, image + 0.1 * torch.randn_like(image)])
        assert total_loss(loss).isfinite()
    else:
        with torch.no_grad():
            assert model.eval()(image, mode='tensor').shape == (1, 10)


@pytest.mark.parametrize('path', PRETRAIN, ids=ids(PRETRAIN))
def test_pretraining_configs_corruptions_schedule_and_knn_line(path):
    cfg = load(path)
    assert cfg.train_cfg.max_epochs == 10 and cfg.train_dataloader.batch_size == 256
    knn = cfg.custom_hooks[-1]
    assert knn.type == 'KNNEvaluationHook' and (knn.max_train, knn.max_val) == (1000, 1000)
    assert (knn.train_dataset.part, knn.val_dataset.part) == ('train', 'holdout')
    assert knn.train_dataset.num_per_class == 100 and knn.interval == 1
    HOOKS.build(knn)  # its arguments pass the hook's checks
    if path not in ENERGY:
        return
    # exact double backward on CPUs; alpha set on the first batch as everywhere
    assert cfg.model.grad_mode == 'exact' and cfg.model.num_steps == 2
    assert cfg.custom_hooks[0] == dict(type='InitialStepSizeHook', target_rms=0.03)
    kinds = [step.type for step in cfg.train_dataloader.dataset.pipeline]
    assert kinds[:4] == ['LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip', kinds[3]]
    name = path.stem.split('1xb256-')[1].split('-coslr')[0]
    parts = corruption_parts(cfg)
    assert [p.type for p in parts] == [kind for kind, _ in CORRUPTIONS[name]]
    for part, (_, settings) in zip(parts, CORRUPTIONS[name]):
        assert {key: part[key] for key in settings} == settings
        assert (part.mean, part.std, part.channel_order) == (MEAN, STD, 'bgr')


def test_mae_has_the_energy_configs_encoder_and_data():
    mae = load(CONFIGS / 'mae' / 'mae_vit-mini-p4_1xb256-coslr-10e_cifar10.py')
    energy = load(ENERGY[0])
    assert mae.model.backbone.arch == energy.model.backbone.arch
    assert mae.model.neck.num_patches == 64
    pipeline = energy.train_dataloader.dataset.pipeline
    assert mae.train_dataloader.dataset.pipeline == [*pipeline[:3], pipeline[-1]]
    assert mae.custom_hooks == [energy.custom_hooks[-1]]
    assert mae.param_scheduler == energy.param_scheduler


@pytest.mark.parametrize('pretrain', PRETRAIN, ids=ids(PRETRAIN))
def test_finetune_backbone_has_exactly_the_pretrained_parameters(pretrain):
    """Same names and shapes; MAE's encoder ends in its final norm ``ln1`` where the
    fine-tune (global pool) has a fresh ``ln2``, as in MAE's own fine-tuning."""
    source = build_model(load(pretrain)).backbone.state_dict()
    target = build_model(load(CLASSIFY[0])).backbone.state_dict()
    if 'mae' in pretrain.name:
        source = {k: v for k, v in source.items() if not k.startswith('ln1.')}
        target = {k: v for k, v in target.items() if not k.startswith('ln2.')}
    assert {k: v.shape for k, v in target.items()} == {k: v.shape for k, v in source.items()}


# ---------------------------------------------------------------- pipelines on tiny data
def check_pretraining_pipeline(cfg: Config, channel: int) -> None:
    """One batch of the training pipeline through the model's loss; the red channel, where
    the images are bright, is channel 0 after the data preprocessor (RGB); the k-NN hook's
    datasets give features."""
    init_default_scope('mmpretrain')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = default_collate([dataset[i] for i in range(4)])
    model = build_model(cfg)
    data = model.data_preprocessor(batch, training=True)
    inputs = data['inputs']
    clean = inputs[0] if isinstance(inputs, list) else inputs
    assert clean.shape == (4, 3, 32, 32)
    assert clean[:, channel].mean() > clean[:, 1].mean() + 1  # red stays red
    if cfg.model.type == 'MAE':
        assert model.loss(clean, data['data_samples'])['loss'].isfinite()
    else:
        assert len(inputs) == 2 and total_loss(model.loss(inputs)).isfinite()
    knn = dict(cfg.custom_hooks[-1])
    knn['train_dataset'] = small_splits(knn['train_dataset'])
    knn['val_dataset'] = small_splits(knn['val_dataset'])
    hook = HOOKS.build(knn)
    feats, labels = hook.extract(model, 'train')
    assert feats.shape == (2 * CLASSES, 128) and sorted(set(labels.tolist())) == list(range(10))
    assert hook.extract(model, 'val')[0].shape == (2 * CLASSES, 128)


@pytest.mark.parametrize('path', PRETRAIN, ids=ids(PRETRAIN))
def test_pretraining_pipeline_on_class_folders(path, folders):
    cfg = load(path)
    set_root(cfg, folders)
    check_pretraining_pipeline(cfg, channel=0)


def check_classification_pipeline(cfg: Config) -> None:
    init_default_scope('mmpretrain')
    model = build_model(cfg)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset_cfg = cfg[loader].dataset
        if dataset_cfg.type == 'ClassBalancedSplit':
            dataset_cfg = small_splits(dataset_cfg)
        dataset = DATASETS.build(dataset_cfg)
        assert len(dataset) == 2 * CLASSES if loader != 'test_dataloader' else len(dataset) > 0
        batch = default_collate([dataset[i] for i in range(4)])
        data = model.data_preprocessor(batch, training=loader == 'train_dataloader')
        assert data['inputs'].shape == (4, 3, 32, 32)
        assert data['inputs'][:, 0].mean() > data['inputs'][:, 1].mean() + 1  # RGB
        assert model.loss(data['inputs'], data['data_samples'])['loss'].isfinite()


@pytest.mark.parametrize('path', CLASSIFY, ids=ids(CLASSIFY))
def test_classification_pipeline_on_class_folders(path, folders):
    cfg = load(path)
    set_root(cfg, folders)
    check_classification_pipeline(cfg)


@pytest.mark.parametrize(
    'name',
    [
        'ebm/ebm_vit-mini-p4_1xb256-mixed-coslr-10e_cifar10.py',
        'mae/mae_vit-mini-p4_1xb256-coslr-10e_cifar10.py',
        'benchmarks/mmpretrain/vit-mini-p4_1xb128-coslr-100e_cifar10-k100.py',
        'benchmarks/mmpretrain/vit-mini-p4_1xb256-linear-coslr-30e_cifar10-k1000.py',
    ],
)
def test_the_official_release_as_the_source_comment_says(name, official_configs, pickles):
    cfg = load(official_configs / name)
    assert cfg.train_set.type == 'CIFAR10' and not cfg.data_preprocessor.to_rgb  # RGB arrays
    set_root(cfg, pickles)
    if 'ebm' in name or 'mae' in name:
        if 'ebm' in name:
            assert {p.channel_order for p in corruption_parts(cfg)} == {'rgb'}
        assert cfg.train_dataloader.dataset.pipeline[0].type == 'RandomResizedCrop'
        check_pretraining_pipeline(cfg, channel=0)
    else:
        check_classification_pipeline(cfg)


@pytest.mark.parametrize('pretrain', [ENERGY[0], PRETRAIN[-1]], ids=['energy', 'mae'])
def test_finetune_starts_from_a_checkpoint_or_from_scratch_as_its_comment_says(pretrain, tmp_path):
    torch.manual_seed(0)
    source = build_model(load(pretrain))
    checkpoint = tmp_path / 'epoch_10.pth'
    torch.save({'state_dict': source.state_dict()}, checkpoint)
    cfg = load(CLASSIFY[0])
    cfg.merge_from_dict({'model.backbone.init_cfg.checkpoint': str(checkpoint)})
    model = build_model(cfg)
    model.init_weights()
    loaded = model.backbone.state_dict()
    for key, value in source.backbone.state_dict().items():
        if not key.startswith('ln1.'):  # MAE's final norm; the fine-tune pools through ln2
            assert torch.equal(loaded[key], value), key
    cfg = load(CLASSIFY[0])
    cfg.merge_from_dict({'model.backbone.init_cfg': None})
    build_model(cfg).init_weights()  # from scratch


def test_the_knn_val_images_are_a_balanced_part_of_the_finetune_validation_split(folders):
    """The hook classifies the first images per class of the fine-tunes' held-out split (the
    same seed and per-class order), so the curve never sees a fine-tune training image."""
    init_default_scope('mmpretrain')
    knn = load(ENERGY[0]).custom_hooks[-1]
    finetune = load(CLASSIFY[0])
    assert knn.train_dataset.holdout_per_class == finetune.val_dataloader.dataset.holdout_per_class
    assert knn.val_dataset.holdout_per_class == 100 < 500

    def paths(cfg, holdout):
        cfg = dict(cfg, dataset=dict(cfg['dataset'], data_root=str(folders)))
        dataset = DATASETS.build(dict(cfg, holdout_per_class=holdout))
        return {dataset.get_data_info(i)['img_path'] for i in range(len(dataset))}

    small = paths(knn.val_dataset, holdout=2)
    assert len(small) == 2 * CLASSES
    assert small < paths(finetune.val_dataloader.dataset, holdout=4)
    assert not small & paths(dict(knn.train_dataset, num_per_class=2), holdout=4)
