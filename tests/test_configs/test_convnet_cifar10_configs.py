"""The CIFAR-10 ConvNet configs (issue 31, docs/convnet.md): one dense ConvNeXt pretrained by
energy and by MMPretrain's SparK, evaluated by the ViT study's fine-tunes and probe; one real
training step of each on tiny class folders, and both checkpoints into the fine-tunes."""

import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from cifar10_testing import write_class_folders
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmpretrain.models.utils.sparse_modules import SparseHelper
from mmpretrain.registry import DATASETS, HOOKS, MODELS

import mmpretrain_ebm  # noqa: F401  (registers the algorithm, corruptions, hooks, split)

ROOT = Path(__file__).parents[2]
CONFIGS = ROOT / 'configs'
NAME = 'convnext-mini-p2'
ENERGY = CONFIGS / 'ebm' / f'ebm_{NAME}_1xb256-mixed-coslr-10e_cifar10.py'
SPARK = CONFIGS / 'spark' / f'spark_sparse-{NAME}_1xb256-coslr-10e_cifar10.py'
BENCH = CONFIGS / 'benchmarks' / 'mmpretrain'
K100 = BENCH / f'{NAME}_1xb128-coslr-100e_cifar10-k100.py'
FULL = BENCH / f'{NAME}_1xb256-coslr-10e_cifar10-full.py'
LINEAR = BENCH / f'{NAME}_1xb256-linear-coslr-30e_cifar10-k1000.py'
PRETRAIN = [ENERGY, SPARK]
CLASSIFY = [K100, FULL, LINEAR]
VIT = {  # the colour study's configs these mirror
    ENERGY: CONFIGS / 'ebm' / 'ebm_vit-mini-p4_1xb256-mixed-coslr-10e_cifar10.py',
    K100: BENCH / 'vit-mini-p4_1xb128-coslr-100e_cifar10-k100.py',
    FULL: BENCH / 'vit-mini-p4_1xb256-coslr-10e_cifar10-full.py',
    LINEAR: BENCH / 'vit-mini-p4_1xb256-linear-coslr-30e_cifar10-k1000.py',
}
ARCH = dict(depths=[1, 4], channels=[64, 128])
MEAN, STD = [125.31, 122.95, 113.87], [62.99, 62.09, 66.70]
#: backbone keys a SparK checkpoint lacks: SparseConvNeXt has no final norm
SPARK_MISSING = {'norm1.weight', 'norm1.bias'}


def ids(paths):
    return [p.name for p in paths]


def load(path: Path) -> Config:
    return Config.fromfile(str(path))


def build_model(cfg: Config) -> torch.nn.Module:
    init_default_scope(cfg.default_scope)
    return MODELS.build(dict(cfg.model, data_preprocessor=cfg.data_preprocessor))


def set_root(cfg: Config, root: Path) -> None:
    """Point every dataset of ``cfg`` at ``root`` (configs keep 'data/cifar10')."""
    text = cfg.pretty_text.replace("'data/cifar10'", repr(str(root)))
    cfg.merge_from_dict(Config.fromstring(text, '.py').to_dict())


def small_splits(dataset_cfg: dict, num_per_class=2, holdout=2) -> dict:
    dataset_cfg = dict(dataset_cfg, holdout_per_class=holdout)
    if dataset_cfg['part'] == 'train':
        dataset_cfg['num_per_class'] = num_per_class
    return dataset_cfg


def one_batch(cfg: Config, size: int = 4) -> dict:
    dataset_cfg = cfg.train_dataloader.dataset
    if dataset_cfg.type == 'ClassBalancedSplit':
        dataset_cfg = small_splits(dataset_cfg)
    dataset = DATASETS.build(dataset_cfg)
    return default_collate([dataset[i] for i in range(size)])


def train_step(model, cfg: Config, batch: dict):
    """mmengine's train step (data preprocessor, loss, backward, optimizer step) with the
    config's optimizer; returns the losses and the parameter gradients before the step."""
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    data = model.data_preprocessor(batch, training=True)
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    wrapper.backward(loss)
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    wrapper.step()
    wrapper.zero_grad()
    return loss.detach(), grads


def seed_everything(seed: int = 0) -> None:
    """The pipelines draw from numpy and random, the models and masks from torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def backbone_state(model) -> dict:
    return {k: v.clone() for k, v in model.backbone.state_dict().items()}


@pytest.fixture(scope='module')
def folders(tmp_path_factory) -> Path:
    return write_class_folders(tmp_path_factory.mktemp('cifar10'), 4, 1)


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory) -> dict:
    """A checkpoint of each pretraining, every float weight moved off its initialization so
    that a weight the fine-tune did not load cannot pass for loaded."""
    folder = tmp_path_factory.mktemp('checkpoints')
    torch.manual_seed(0)
    paths = {}
    for name, path in (('energy', ENERGY), ('spark', SPARK)):
        model = build_model(load(path))
        model.init_weights()
        state = model.state_dict()
        for value in state.values():
            if value.is_floating_point():
                value.add_(0.05 * torch.randn_like(value))
        paths[name] = folder / f'{name}_epoch_10.pth'
        torch.save({'state_dict': state, 'meta': {}}, paths[name])
    return paths


# ---------------------------------------------------------------- the configs themselves
def test_the_convnet_configs_are_all_here():
    found = sorted(p for p in CONFIGS.rglob(f'*{NAME}*_cifar10*.py') if '_base_' not in p.parts)
    assert found == sorted(PRETRAIN + CLASSIFY)
    assert (CONFIGS / '_base_' / 'models' / f'ebm_{NAME}_cifar10.py').is_file()


def test_one_dense_architecture_everywhere():
    """Energy, SparK (its sparse form) and every fine-tune build the same ConvNeXt."""
    dense = dict(arch=ARCH, in_channels=3, stem_patch_size=2)
    energy = load(ENERGY).model.backbone
    spark = load(SPARK).model.backbone
    assert (energy.type, spark.type) == ('ConvNeXt', 'SparseConvNeXt')
    for backbone in [energy, spark] + [load(p).model.backbone for p in CLASSIFY]:
        assert {key: backbone[key] for key in dense} == dense
    assert energy.out_indices == 1 and spark.out_indices == [0, 1]
    for path in CLASSIFY:
        backbone = load(path).model.backbone
        assert backbone.type == 'ConvNeXt' and backbone.out_indices == 1
        assert backbone.init_cfg == dict(type='Pretrained', checkpoint=None, prefix='backbone.')
    # the energy model has no BatchNorm: LayerNorm normalizes each image by itself
    model = build_model(load(ENERGY))
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


@pytest.mark.parametrize('path', PRETRAIN + CLASSIFY, ids=ids(PRETRAIN + CLASSIFY))
def test_config_builds_its_model_optimizer_and_runs_one_image(path):
    cfg = load(path)
    model = build_model(cfg)
    assert (cfg.data_preprocessor.mean, cfg.data_preprocessor.std) == (MEAN, STD)
    assert cfg.data_preprocessor.to_rgb  # files are read as BGR
    build_optim_wrapper(model, cfg.optim_wrapper)
    torch.manual_seed(0)
    image = torch.randn(1, 3, 32, 32)
    if path == SPARK:
        assert model.loss(torch.randn(2, 3, 32, 32), [])['loss'].isfinite()
    elif path == ENERGY:
        assert model.energy(image).shape == (1,)
    else:
        with torch.no_grad():
            assert model.eval()(image, mode='tensor').shape == (1, 10)


def test_the_energy_config_is_the_vit_mix_on_the_convnet():
    """Everything but the backbone as the ViT's mixed config: data and corruptions, schedule,
    alpha hook and k-NN line; exact double backward, N = 2."""
    cfg, vit = load(ENERGY), load(VIT[ENERGY])
    for key in ('train_dataloader', 'optim_wrapper', 'param_scheduler', 'train_cfg'):
        assert cfg[key] == vit[key], key
    assert cfg.custom_hooks == vit.custom_hooks
    assert cfg.custom_hooks[0] == dict(type='InitialStepSizeHook', target_rms=0.03)
    assert cfg.custom_hooks[-1].type == 'KNNEvaluationHook'
    model = dict(cfg.model, backbone=None, head=None)
    assert model == dict(vit.model, backbone=None, head=None)
    assert cfg.model.grad_mode == 'exact' and cfg.model.num_steps == 2
    assert cfg.model.head == dict(vit.model.head, in_channels=128)


def test_spark_has_the_energy_configs_data_schedule_and_knn_line():
    spark, energy = load(SPARK), load(ENERGY)
    pipeline = energy.train_dataloader.dataset.pipeline
    assert spark.train_dataloader.dataset.pipeline == [*pipeline[:3], pipeline[-1]]
    assert spark.train_dataloader.batch_size == 256 and spark.train_cfg == energy.train_cfg
    assert spark.custom_hooks == [energy.custom_hooks[-1]]
    assert spark.param_scheduler[:2] == energy.param_scheduler  # lr: warm-up, cosine
    wd = spark.param_scheduler[2]  # SparK's weight decay, 0.04 rising to 0.2
    assert (wd.type, wd.eta_min, wd.end) == ('CosineAnnealingWeightDecay', 0.2, 10)
    optimizer = spark.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.weight_decay, optimizer.lr) == ('Lamb', 0.04, 1e-4)
    assert spark.auto_scale_lr == dict(base_batch_size=256, enable=True)


def test_spark_masks_an_8_by_8_grid_of_4_px_cells():
    """The two stages' total stride is 4: SparK's mask has 8 x 8 cells at 32 px (60 % masked),
    the decoder returns to 32 px and the head's target patches are the cells."""
    model = build_model(load(SPARK))
    assert (model.feature_map_size, model.len_keep) == (8, 26)
    assert model.head.patch_size == model.downsample_raito == 4
    mask = model.mask(torch.Size([3, 3, 32, 32]), 'cpu')
    assert mask.shape == (3, 1, 8, 8) and mask.sum(dim=(1, 2, 3)).tolist() == [26] * 3
    SparseHelper._cur_active = mask
    feats = model.backbone(torch.randn(3, 3, 32, 32))
    assert [tuple(f.shape) for f in feats] == [(3, 64, 16, 16), (3, 128, 8, 8)]
    assert torch.all(feats[-1] * ~mask == 0)  # masked cells stay empty
    shapes = []
    model.neck.register_forward_hook(lambda module, args, out: shapes.append(out.shape))
    assert model.loss(torch.randn(3, 3, 32, 32), [])['loss'].isfinite()
    assert shapes == [(3, 3, 32, 32)]  # the reconstruction


def test_sparse_convnext_unmasked_is_the_dense_convnext():
    """With every cell active SparK's encoder computes the fine-tune's ConvNeXt (same weights,
    loaded by name): the checkpoints transfer to the same function."""
    torch.manual_seed(0)
    sparse = build_model(load(SPARK)).backbone
    dense = build_model(load(K100)).backbone
    sparse.eval(), dense.eval()  # (ConvNeXt.train returns None)
    missing, unexpected = dense.load_state_dict(sparse.state_dict(), strict=False)
    assert (set(missing), unexpected) == (SPARK_MISSING, [])
    x = torch.randn(2, 3, 32, 32)
    SparseHelper._cur_active = torch.ones(2, 1, 8, 8, dtype=torch.bool)
    with torch.no_grad():
        sparse_map = sparse(x)[-1]
        h = x
        for downsample, stage in zip(dense.downsample_layers, dense.stages):
            h = stage(downsample(h))
        pooled = dense(x)[0]
    torch.testing.assert_close(sparse_map, h, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pooled, dense.norm1(h.mean(dim=(2, 3), keepdim=True)).flatten(1))


def test_each_image_gets_its_own_energy_gradient():
    """No BatchNorm: dE/dx of an image does not depend on the rest of the batch (train mode)."""
    torch.manual_seed(0)
    model = build_model(load(ENERGY)).train()
    x = torch.randn(3, 3, 32, 32, requires_grad=True)
    (grad,) = torch.autograd.grad(model.energy(x).sum(), x)
    alone = x[:1].detach().requires_grad_()
    (grad_alone,) = torch.autograd.grad(model.energy(alone).sum(), alone)
    torch.testing.assert_close(grad[:1], grad_alone)


# ---------------------------------------------------------------- training steps on tiny data
@pytest.mark.parametrize('path', PRETRAIN, ids=ids(PRETRAIN))
def test_pretraining_step_on_class_folders(path, folders):
    """One step of the config's pipeline, loss and optimizer: finite, every backbone weight
    gets a gradient (energy: but the final norm's bias, which only shifts E, docs/algorithm.md
    item 5) and the step changes the backbone."""
    cfg = load(path)
    set_root(cfg, folders)
    seed_everything()
    model = build_model(cfg)
    model.init_weights()
    batch = one_batch(cfg)
    before = backbone_state(model)
    loss, grads = train_step(model, cfg, batch)
    assert loss.isfinite() and loss > 0
    expected = {n for n, _ in model.backbone.named_parameters()}
    if path == ENERGY:
        expected -= {'norm1.bias'}
        assert 'alpha' in grads
    reached = {n[len('backbone.') :] for n, g in grads.items() if n.startswith('backbone.')}
    assert reached == expected
    assert all(grads[f'backbone.{n}'].abs().sum() > 0 for n in expected)
    after = model.backbone.state_dict()
    changed = {k for k, v in before.items() if not torch.equal(after[k], v)}
    # a block's own LayerNorm reaches the output through its layer scale (gamma, 1e-6 at
    # initialization): its first update can be below float32's resolution at 1.0
    block_norms = {k for k in expected if re.fullmatch(r'stages\.\d+\.\d+\.norm\.\w+', k)}
    assert changed <= expected and expected - changed <= block_norms
    assert len(block_norms) == 10 and {k for k in changed if k.endswith('gamma')} == {
        f'stages.{i}.{j}.gamma' for i, depth in enumerate(ARCH['depths']) for j in range(depth)
    }


def test_the_knn_line_gives_energy_features(folders):
    cfg = load(ENERGY)
    set_root(cfg, folders)
    model = build_model(cfg)
    knn = dict(cfg.custom_hooks[-1])
    knn['train_dataset'] = small_splits(knn['train_dataset'])
    knn['val_dataset'] = small_splits(knn['val_dataset'])
    feats, labels = HOOKS.build(knn).extract(model, 'train')
    assert feats.shape == (20, 128) and sorted(set(labels.tolist())) == list(range(10))


def test_the_knn_line_gives_spark_features_of_every_cell(folders):
    """SparK's sparse encoder reads its mask from SparseHelper._cur_active, which a training
    step leaves at its batch's mask: the hook sets every cell active for its images (the
    dense encoder's features) and puts the training mask back."""
    cfg = load(SPARK)
    set_root(cfg, folders)
    model = build_model(cfg)
    model.loss(torch.randn(4, 3, 32, 32), [])  # a training step leaves its batch's mask
    left = SparseHelper._cur_active
    assert left is not None and not left.all()
    knn = dict(cfg.custom_hooks[-1])
    knn['train_dataset'] = small_splits(knn['train_dataset'])
    knn['val_dataset'] = small_splits(knn['val_dataset'])
    hook = HOOKS.build(knn)
    feats, labels = hook.extract(model, 'train')
    assert feats.shape == (20, 128) and sorted(set(labels.tolist())) == list(range(10))
    assert SparseHelper._cur_active is left
    x = torch.randn(3, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        got = hook.features(model, x)
        SparseHelper._cur_active = torch.ones(3, 1, 8, 8, dtype=torch.bool)
        expected = model.backbone(x)[-1].mean(dim=(2, 3))
    SparseHelper._cur_active = left
    torch.testing.assert_close(got, expected)


# ---------------------------------------------------------------- both checkpoints downstream
@pytest.mark.parametrize('source', ['energy', 'spark'])
def test_a_checkpoint_has_exactly_the_finetune_backbones_keys(source, checkpoints):
    """The `backbone.` weights of a checkpoint against the fine-tune's backbone: energy
    gives every key; SparK every key but the final norm (SPARK_MISSING); nothing more."""
    state = torch.load(checkpoints[source], weights_only=True)['state_dict']
    weights = {k[len('backbone.') :]: v for k, v in state.items() if k.startswith('backbone.')}
    for path in CLASSIFY:
        target = build_model(load(path)).backbone
        missing, unexpected = target.load_state_dict(weights, strict=False)
        assert unexpected == []
        assert set(missing) == (set() if source == 'energy' else SPARK_MISSING)


@pytest.mark.parametrize('path', CLASSIFY, ids=ids(CLASSIFY))
@pytest.mark.parametrize('source', ['energy', 'spark', 'scratch'])
def test_finetune_step_from_each_pretraining_and_from_scratch(path, source, folders, checkpoints):
    """As the config's comment says: init_cfg.checkpoint loads the `backbone.` weights (every
    one but SparK's missing final norm), init_cfg=None trains from scratch; then one step of
    the config's pipeline and optimizer. The probe leaves the whole backbone as loaded."""
    cfg = load(path)
    set_root(cfg, folders)
    if source == 'scratch':
        cfg.merge_from_dict({'model.backbone.init_cfg': None})
    else:
        cfg.merge_from_dict({'model.backbone.init_cfg.checkpoint': str(checkpoints[source])})
    seed_everything()
    model = build_model(cfg)
    model.init_weights()
    loaded = backbone_state(model)
    if source != 'scratch':
        state = torch.load(checkpoints[source], weights_only=True)['state_dict']
        for key, value in loaded.items():
            if source == 'spark' and key in SPARK_MISSING:
                assert key.startswith('norm1.')  # a fresh LayerNorm: weight 1, bias 0
                assert torch.equal(value, torch.ones_like(value) * float(key.endswith('weight')))
            else:
                assert torch.equal(value, state[f'backbone.{key}']), key
    head = model.head.fc.weight.detach().clone()
    loss, grads = train_step(model, cfg, one_batch(cfg))
    assert loss.isfinite() and loss > 0
    assert not torch.equal(model.head.fc.weight, head)
    after = model.backbone.state_dict()
    changed = {k for k, v in loaded.items() if not torch.equal(after[k], v)}
    if path == LINEAR:
        assert changed == set()  # frozen stages; the final norm at lr 0
    else:
        assert any(k.startswith('backbone.stages.0.') for k in grads)
        assert {k for k in changed if k.startswith('stages.0.0.pointwise')} != set()
        assert 'norm1.weight' in changed


def test_finetunes_have_the_vit_studys_data_schedules_and_heads():
    for path in CLASSIFY:
        cfg, vit = load(path), load(VIT[path])
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader', 'optim_wrapper'):
            if key == 'optim_wrapper' and path == LINEAR:
                # the probe's one change: the final norm (not in frozen_stages) at lr 0
                keys = cfg[key].paramwise_cfg.custom_keys
                assert keys == {'backbone.norm1': dict(lr_mult=0.0, decay_mult=0.0)}
                assert dict(cfg[key], paramwise_cfg=None) == dict(vit[key], paramwise_cfg=None)
                continue
            assert cfg[key] == vit[key], (path.name, key)
        for key in ('param_scheduler', 'train_cfg', 'val_evaluator', 'default_hooks'):
            assert cfg[key] == vit[key], (path.name, key)
        assert cfg.model.head == vit.model.head and cfg.model.neck == vit.model.neck
    assert load(K100).model.backbone.drop_path_rate == 0.1
    linear = load(LINEAR).model.backbone
    assert (linear.frozen_stages, linear.drop_path_rate) == (2, 0.0)
