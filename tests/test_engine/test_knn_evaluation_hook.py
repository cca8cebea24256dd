"""KNNEvaluationHook: weighted k-NN top-1 of frozen features, logged during pretraining."""

import copy
import json
import math
import uuid
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmpretrain.registry import HOOKS, MODELS
from torch import nn

import mmpretrain_ebm  # noqa: F401  (registers the hook, the algorithm and the corruptions)
from mmpretrain_ebm.engine import KNNEvaluationHook
from mmpretrain_ebm.engine.hooks.knn_evaluation_hook import weighted_knn_top1

SIZE = 16
NORM = dict(mean=[127.5, 127.5, 127.5], std=[64.0, 64.0, 64.0])
EVAL_PIPELINE = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]


def write_two_classes(root: Path, per_class: int, seed: int) -> Path:
    """``root/red`` and ``root/blue``: noisy 16-px PNGs, red-dominant or blue-dominant."""
    rng = np.random.default_rng(seed)
    for name, channel in (('red', 2), ('blue', 0)):  # BGR order on disk
        folder = root / name
        folder.mkdir(parents=True)
        for index in range(per_class):
            image = rng.integers(0, 100, (SIZE, SIZE, 3)).astype(np.uint8)
            image[..., channel] += 150
            assert cv2.imwrite(str(folder / f'{index:03d}.png'), image)
    return root


@pytest.fixture(scope='module')
def two_classes(tmp_path_factory):
    root = tmp_path_factory.mktemp('two_classes')
    return write_two_classes(root / 'train', 12, seed=0), write_two_classes(root / 'val', 8, 1)


def folder_dataset(root: Path, pipeline=EVAL_PIPELINE) -> dict:
    return dict(type='CustomDataset', data_root=str(root), pipeline=pipeline)


# ---------------------------------------------------------------- the k-NN rule itself
def independent_weighted_knn(train, train_labels, test, test_labels, k, temperature):
    """InstDisc / DINO's weighted k-NN, written out with numpy loops."""
    train = np.asarray(train, float)
    test = np.asarray(test, float)
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    test = test / np.linalg.norm(test, axis=1, keepdims=True)
    correct = 0
    for feature, label in zip(test, test_labels):
        sims = train @ feature
        nearest = np.argsort(-sims, kind='stable')[:k]
        votes = {}
        for j in nearest:
            votes[train_labels[j]] = votes.get(train_labels[j], 0.0) + math.exp(
                sims[j] / temperature
            )
        best = max(votes.values())
        correct += min(c for c, v in votes.items() if v == best) == label
    return 100.0 * correct / len(test)


def test_weighted_knn_matches_a_hand_computation_and_an_independent_one():
    # Test point (1, 0): its 3 nearest are class 0 at 60 degrees (twice) and class 1 at
    # 10 degrees. A majority vote says 0; the weights exp(cos / 0.07) say 1
    # (exp(0.985 / 0.07) = 1.3e6 > 2 exp(0.5 / 0.07) = 2.5e3).
    angles = np.radians([60, -60, 10, 180, 170])
    train = np.stack([np.cos(angles), np.sin(angles)], 1) * [[1], [2], [3], [1], [0.5]]
    labels = np.array([0, 0, 1, 2, 2])
    test = np.array([[1.0, 0.0], [-1.0, 0.05], [0.5, 0.9]])
    test_labels = np.array([1, 2, 0])
    as_tensors = [torch.tensor(a) for a in (train, labels, test, test_labels)]
    assert weighted_knn_top1(*as_tensors, k=3, temperature=0.07) == pytest.approx(100.0)
    # with a hot temperature the 60-degree pair outvotes the 10-degree neighbour
    assert weighted_knn_top1(*as_tensors, k=3, temperature=100.0) == pytest.approx(100 * 2 / 3)
    rng = np.random.default_rng(0)
    for trial in range(5):
        train = rng.normal(size=(40, 6))
        labels = rng.integers(0, 4, 40)
        test = rng.normal(size=(25, 6))
        test_labels = rng.integers(0, 4, 25)
        for k, temperature in ((1, 0.07), (5, 0.07), (20, 0.5), (100, 0.07)):
            expected = independent_weighted_knn(train, labels, test, test_labels, k, temperature)
            got = weighted_knn_top1(
                *(torch.tensor(a) for a in (train, labels, test, test_labels)),
                k=k,
                temperature=temperature,
                chunk_size=7,  # several chunks
            )
            assert got == pytest.approx(expected), (trial, k, temperature)


def test_random_labels_give_chance():
    generator = torch.Generator().manual_seed(0)
    train = torch.randn(2000, 16, generator=generator)
    test = torch.randn(2000, 16, generator=generator)
    top1 = weighted_knn_top1(
        train,
        torch.randint(0, 2, (2000,), generator=generator),
        test,
        torch.randint(0, 2, (2000,), generator=generator),
    )
    assert 45 < top1 < 55


# ---------------------------------------------------------------- features of real images
class MeanColour(nn.Module):
    """A 'backbone' whose feature is each image's mean colour, with a BatchNorm in train mode."""

    def __init__(self):
        super().__init__()
        self.norm = nn.BatchNorm2d(3)

    def forward(self, x):
        return self.norm(x).mean(dim=(2, 3))


class Stub(nn.Module):
    def __init__(self):
        super().__init__()
        init_default_scope('mmpretrain')
        self.data_preprocessor = MODELS.build(
            dict(type='SelfSupDataPreprocessor', to_rgb=True, **NORM)
        )
        self.backbone = MeanColour()
        self.backbone.norm.running_mean.fill_(0.1)  # not BatchNorm's initial state


def test_a_separating_feature_scores_100_and_shuffled_labels_do_not(two_classes, tmp_path):
    train, val = two_classes
    model = Stub().train()
    model.backbone.norm.eval()  # a module frozen in eval mode stays so
    before = copy.deepcopy(model.state_dict())
    hook = KNNEvaluationHook(folder_dataset(train), folder_dataset(val), k=5, batch_size=5)
    feats, labels = hook.extract(model, 'train')
    assert feats.shape == (24, 3) and sorted(labels.tolist()) == [0] * 12 + [1] * 12
    val_feats, val_labels = hook.extract(model, 'val')
    assert weighted_knn_top1(feats, labels, val_feats, val_labels, k=5) == 100.0
    shuffled = labels[torch.randperm(24, generator=torch.Generator().manual_seed(0))]
    scores = [
        weighted_knn_top1(feats, shuffled.roll(shift), val_feats, val_labels, k=5)
        for shift in range(24)
    ]
    assert 30 < np.mean(scores) < 70  # chance is 50
    # the model as it came: modes, weights and BatchNorm statistics
    assert model.training and model.backbone.training and not model.backbone.norm.training
    after = model.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)


def test_max_train_and_max_val_draw_fixed_subsets(two_classes):
    train, val = two_classes
    hook = KNNEvaluationHook(
        folder_dataset(train), folder_dataset(val), max_train=10, max_val=3, cache=False
    )
    model = Stub()
    feats, _ = hook.extract(model, 'train')
    again, _ = hook.extract(model, 'train')
    assert len(feats) == 10 and len(hook.extract(model, 'val')[0]) == 3
    assert torch.equal(feats, again)


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(train_dataset='data/train'), 'train_dataset must be a dataset config dict with a '),
        (dict(val_dataset=dict(data_root='x')), 'val_dataset must be a dataset config dict'),
        (dict(interval=0), 'interval must be an int >= 1, got 0'),
        (dict(k=2.5), 'k must be an int >= 1, got 2.5'),
        (dict(temperature=0), 'temperature must be a finite number > 0, got 0'),
        (dict(temperature=float('inf')), 'temperature must be a finite number > 0, got inf'),
        (dict(max_train=0), 'max_train must be an int >= 1 or None, got 0'),
        (dict(max_val=True), 'max_val must be an int >= 1 or None, got True'),
        (dict(batch_size=0), 'batch_size must be an int >= 1, got 0'),
        (dict(num_workers=-1), 'num_workers must be an int >= 0, got -1'),
        (dict(pool_type='max'), "pool_type must be one of .* got 'max'"),
        (dict(by_epoch='yes'), "by_epoch must be True, False or None, got 'yes'"),
        (dict(eval_at_start=1), 'eval_at_start must be True or False, got 1'),
        (dict(cache=None), 'cache must be True or False, got None'),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs, message):
    args = dict(train_dataset=dict(type='CustomDataset'), val_dataset=dict(type='CustomDataset'))
    with pytest.raises(ValueError, match=message):
        KNNEvaluationHook(**{**args, **kwargs})


def test_an_unlabelled_dataset_is_refused(two_classes):
    train, val = two_classes
    unlabelled = dict(folder_dataset(train), with_label=False)
    hook = KNNEvaluationHook(unlabelled, folder_dataset(val))
    with pytest.raises(ValueError, match='the train dataset of KNNEvaluationHook gives images '):
        hook.extract(Stub(), 'train')


# ---------------------------------------------------------------- inside mmengine's Runner
VIT = dict(
    arch=dict(embed_dims=32, num_layers=1, num_heads=2, feedforward_channels=64),
    img_size=SIZE,
    patch_size=4,
)
ENERGY = dict(
    type='EnergyRestorationAlgorithm',
    backbone=dict(type='VisionTransformer', out_type='avg_featmap', final_norm=False, **VIT),
    head=dict(type='EnergyHead', in_channels=32, pool_type='none'),
    num_steps=2,
    alpha=1.0,
    learnable_alpha=True,
    loss=dict(type='SmoothL1Loss', beta=1.0),
    grad_mode='exact',
)
MAE = dict(
    type='MAE',
    backbone=dict(type='MAEViT', mask_ratio=0.75, **VIT),
    neck=dict(
        type='MAEPretrainDecoder',
        num_patches=16,
        patch_size=4,
        in_chans=3,
        embed_dim=32,
        decoder_embed_dim=16,
        decoder_depth=1,
        decoder_num_heads=2,
    ),
    head=dict(
        type='MAEPretrainHead',
        norm_pix=True,
        patch_size=4,
        loss=dict(type='PixelReconstructionLoss', criterion='L2'),
    ),
)


def tiny_config(model: dict, data: Path, val: Path, work_dir: Path, loop: dict, **hook) -> Config:
    corrupt = [dict(type='DenoisingCorruption', **NORM)] if model['type'] != 'MAE' else []
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='RandomFlip', prob=0.5),
        *corrupt,
        dict(type='PackInputs'),
    ]
    return Config(
        dict(
            default_scope='mmpretrain',
            work_dir=str(work_dir),
            experiment_name=f'{work_dir.name}-{uuid.uuid4().hex[:8]}',
            model=model,
            data_preprocessor=dict(type='SelfSupDataPreprocessor', to_rgb=True, **NORM),
            train_dataloader=dict(
                batch_size=8,
                num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=True),
                collate_fn=dict(type='default_collate'),
                dataset=dict(
                    type='CustomDataset', data_root=str(data), with_label=False, pipeline=pipeline
                ),
            ),
            train_cfg=loop,
            optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)),
            default_hooks=dict(
                logger=dict(type='LoggerHook', interval=1),
                checkpoint=dict(type='CheckpointHook', interval=1),
            ),
            log_processor=dict(by_epoch=loop['type'] == 'EpochBasedTrainLoop'),
            custom_hooks=[
                dict(
                    type='KNNEvaluationHook',
                    train_dataset=folder_dataset(data),
                    val_dataset=folder_dataset(val),
                    k=5,
                    **hook,
                )
            ],
            randomness=dict(seed=0),
            env_cfg=dict(dist_cfg=dict(backend='gloo')),
        )
    )


def json_log(work_dir: Path) -> list:
    (path,) = [p for p in work_dir.rglob('vis_data/*.json') if p.name != 'scalars.json']
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize('model', [ENERGY, MAE], ids=['energy', 'mae'])
def test_runner_logs_knn_top1_every_epoch_and_leaves_the_model_as_it_was(
    model, two_classes, tmp_path
):
    train, val = two_classes
    loop = dict(type='EpochBasedTrainLoop', max_epochs=2)
    runner = Runner.from_cfg(tiny_config(model, train, val, tmp_path, loop, interval=1))
    runner.train()
    (hook,) = [h for h in runner.hooks if isinstance(h, KNNEvaluationHook)]
    # before training, after epoch 1 and 2 (3 iterations of 8 images each)
    assert [(h['epoch'], h['iter']) for h in hook.history] == [(0, 0), (1, 3), (2, 6)]
    for record in hook.history:
        assert 0 <= record['knn_top1'] <= 100 and record['eval_s'] > 0
    assert hook.history[0]['train_s'] < hook.history[1]['train_s'] < hook.history[2]['train_s']
    # the json log: the losses per iteration and knn_top1 at its steps
    lines = json_log(tmp_path)
    knn = [(line['step'], line['epoch'], line['knn_top1']) for line in lines if 'knn_top1' in line]
    assert knn == [(h['iter'], h['epoch'], h['knn_top1']) for h in hook.history]
    assert any('loss' in line for line in lines)
    written = json.loads((tmp_path / 'knn_history.json').read_text())
    assert written == hook.history
    assert runner.message_hub.get_scalar('knn/knn_top1').current() == hook.history[-1]['knn_top1']
    # an evaluation changes neither the weights nor the train mode
    net = runner.model
    assert net.training and all(m.training for m in net.modules())
    before = copy.deepcopy(net.state_dict())
    hook.history.clear()
    hook._evaluate(runner)
    assert len(hook.history) == 1 and net.training and all(m.training for m in net.modules())
    assert all(torch.equal(before[key], value) for key, value in net.state_dict().items())
    # the history travels in the checkpoint
    checkpoint = torch.load(tmp_path / 'epoch_2.pth', weights_only=True)
    assert checkpoint['meta']['knn_evaluation']['history'][-1]['iter'] == 6


def test_iteration_based_loop_counts_iterations(two_classes, tmp_path):
    train, val = two_classes
    loop = dict(type='IterBasedTrainLoop', max_iters=5)
    cfg = tiny_config(ENERGY, train, val, tmp_path, loop, interval=2, eval_at_start=False)
    cfg.default_hooks.checkpoint.update(by_epoch=False, interval=5)
    runner = Runner.from_cfg(cfg)
    runner.train()
    (hook,) = [h for h in runner.hooks if isinstance(h, KNNEvaluationHook)]
    assert [h['iter'] for h in hook.history] == [2, 4, 5]  # every 2, and the last


def test_the_hook_builds_from_its_config_line(two_classes):
    train, val = two_classes
    hook = HOOKS.build(
        dict(
            type='KNNEvaluationHook',
            train_dataset=folder_dataset(train),
            val_dataset=folder_dataset(val),
            max_train=1000,
            max_val=1000,
        )
    )
    assert (hook.k, hook.temperature, hook.interval) == (20, 0.07, 1)


def test_a_dataset_without_pipeline_takes_the_configs_test_pipeline(two_classes):
    train, val = two_classes
    bare = dict(type='CustomDataset', data_root=str(train))
    hook = KNNEvaluationHook(bare, folder_dataset(val))
    with pytest.raises(ValueError, match='train_dataset has no pipeline and the config has no'):
        hook.extract(Stub(), 'train')
    runner = SimpleNamespace(
        cfg=Config(dict(test_dataloader=dict(dataset=dict(pipeline=EVAL_PIPELINE))))
    )
    feats, labels = hook.extract(Stub(), 'train', runner)
    assert feats.shape == (24, 3) and len(labels) == 24


def test_a_resumed_run_continues_the_curve_and_a_new_one_starts_afresh(two_classes, tmp_path):
    train, val = two_classes
    first = Runner.from_cfg(
        tiny_config(
            ENERGY, train, val, tmp_path / 'a', dict(type='EpochBasedTrainLoop', max_epochs=1)
        )
    )
    first.train()
    (before,) = [h for h in first.hooks if isinstance(h, KNNEvaluationHook)]
    assert [h['epoch'] for h in before.history] == [0, 1]
    cfg = tiny_config(
        ENERGY, train, val, tmp_path / 'a', dict(type='EpochBasedTrainLoop', max_epochs=2)
    )
    cfg.resume, cfg.load_from = True, str(tmp_path / 'a' / 'epoch_1.pth')
    resumed = Runner.from_cfg(cfg)
    resumed.train()
    (hook,) = [h for h in resumed.hooks if isinstance(h, KNNEvaluationHook)]
    assert hook.history[:2] == before.history and [h['epoch'] for h in hook.history] == [0, 1, 2]
    assert hook.history[2]['train_s'] > before.history[1]['train_s']
    # weights of that run loaded into a run from iteration 0: a curve of its own
    cfg = tiny_config(
        ENERGY, train, val, tmp_path / 'b', dict(type='EpochBasedTrainLoop', max_epochs=1)
    )
    cfg.load_from = str(tmp_path / 'a' / 'epoch_2.pth')
    fresh = Runner.from_cfg(cfg)
    fresh.train()
    (hook,) = [h for h in fresh.hooks if isinstance(h, KNNEvaluationHook)]
    assert [h['epoch'] for h in hook.history] == [0, 1]
    assert hook.history[0]['train_s'] < 1.0  # counted from this run's start, not carried
