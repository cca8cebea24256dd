"""Resume under torch >= 2.6 (weights_only=True) continues exactly from the saved state."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mmpretrain_ebm  # noqa: F401  (allow-lists runner checkpoint types for torch.load)

REPO = Path(__file__).resolve().parents[2]

TINY_CLASSIFIER_CONFIG = """
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmpretrain_ebm'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(num_classes=2, mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True),
    backbone=dict(type='VisionTransformer', arch=dict(embed_dims=16, num_layers=1,
                  num_heads=2, feedforward_channels=32), img_size=32, patch_size=8),
    head=dict(type='VisionTransformerClsHead', num_classes=2, in_channels=16,
              loss=dict(type='CrossEntropyLoss')))
train_dataloader = dict(
    batch_size=2, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CustomDataset', data_root='{data_root}',
                 pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')]))
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=3, begin=0, end=3, by_epoch=True,
                        eta_min=1e-5)]
train_cfg = dict(by_epoch=True, max_epochs={max_epochs})
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1),
                     logger=dict(type='LoggerHook', interval=1))
randomness = dict(seed=0, deterministic=True)
test_dataloader = dict(
    batch_size=2, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CustomDataset', data_root='{data_root}',
                 pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')]))
test_evaluator = dict(type='Accuracy', topk=(1, ))
test_cfg = dict()
"""


def train(work_dir: Path, data_root: Path, max_epochs: int, *extra: str) -> None:
    config = work_dir.parent / f'{work_dir.name}.py'
    config.write_text(TINY_CLASSIFIER_CONFIG.format(data_root=data_root, max_epochs=max_epochs))
    subprocess.run(
        [
            sys.executable,
            str(REPO / 'tools' / 'train.py'),
            str(config),
            '--work-dir',
            str(work_dir),
            *extra,
        ],
        check=True,
        cwd=REPO,
    )


@pytest.mark.timeout(600)
def test_resume_from_epoch_2_equals_uninterrupted_run(tmp_path, labelled_photo_dir):
    interrupted, straight = tmp_path / 'interrupted', tmp_path / 'straight'
    train(interrupted, labelled_photo_dir, max_epochs=2)
    saved = torch.load(interrupted / 'epoch_2.pth')  # weights_only=True: the allow-list works
    assert saved['meta']['epoch'] == 2 and saved['meta']['iter'] == 8

    train(interrupted, labelled_photo_dir, 3, '--resume', str(interrupted / 'epoch_2.pth'))
    train(straight, labelled_photo_dir, max_epochs=3)

    resumed = torch.load(interrupted / 'epoch_3.pth')
    reference = torch.load(straight / 'epoch_3.pth')
    assert resumed['meta']['epoch'] == 3 and resumed['meta']['iter'] == 12
    # AdamW counted 8 steps before the interruption and 4 after it.
    steps = {int(state['step']) for state in resumed['optimizer']['state'].values()}
    assert steps == {12}
    assert (
        resumed['param_schedulers'][0]['last_step']
        == reference['param_schedulers'][0]['last_step']
        == 2
    )
    for key, value in reference['state_dict'].items():
        torch.testing.assert_close(resumed['state_dict'][key], value, msg=key)
    # The first run's parameters changed in epoch 3: the comparison above is not vacuous.
    assert any(not torch.equal(saved['state_dict'][k], v) for k, v in resumed['state_dict'].items())


def test_allow_list_keeps_weights_only_strict(tmp_path):
    """Only the declared types load; an arbitrary class is still refused."""
    path = tmp_path / 'evil.pth'
    torch.save({'payload': Path('x')}, path)
    with pytest.raises(Exception, match='weights_only|Unsupported global'):
        torch.load(path)


@pytest.mark.timeout(600)
def test_dist_train_and_test_sh_run_two_cpu_processes_with_gloo(tmp_path, labelled_photo_dir):
    work_dir = tmp_path / 'dist'
    config = tmp_path / 'dist.py'
    config.write_text(TINY_CLASSIFIER_CONFIG.format(data_root=labelled_photo_dir, max_epochs=1))
    env = {
        'PATH': f'{Path(sys.executable).parent}:/usr/bin:/bin',
        'PORT': '29533',
        'PYTHON': sys.executable,
        'OMP_NUM_THREADS': '1',
    }
    subprocess.run(
        [
            'bash',
            str(REPO / 'tools' / 'dist_train.sh'),
            str(config),
            '2',
            '--work-dir',
            str(work_dir),
        ],
        check=True,
        cwd=REPO,
        env=env,
    )
    checkpoint = torch.load(work_dir / 'epoch_1.pth')
    # 8 images, 2 per process per iteration, 2 processes: 2 iterations per epoch.
    assert checkpoint['meta']['iter'] == 2
    log = next(work_dir.glob('*/*.log')).read_text()
    assert 'world_size: 2' in log or 'Distributed launcher: pytorch' in log

    predictions = tmp_path / 'predictions.pkl'
    subprocess.run(
        [
            'bash',
            str(REPO / 'tools' / 'dist_test.sh'),
            str(config),
            str(work_dir / 'epoch_1.pth'),
            '2',
            '--work-dir',
            str(tmp_path / 'test'),
            '--out',
            str(predictions),
        ],
        check=True,
        cwd=REPO,
        env=env,
    )
    from mmengine.fileio import load

    # the two processes' predictions are gathered: one per image of the dataset
    assert len(load(predictions)) == 8
