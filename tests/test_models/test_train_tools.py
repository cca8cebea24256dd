"""The algorithm through tools/train.py and tools/dist_train.sh: DDP on CPU and SIGKILL resume.

Corruption is 4x super-resolution (deterministic) and the sampler does not shuffle, so runs
with different process counts or an interruption see exactly the same batches.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

REPO = Path(__file__).resolve().parents[2]

CONFIG = """
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmpretrain_ebm'], allow_failed_imports=False)
model = dict(
    type='EnergyRestorationAlgorithm', num_steps=2, alpha=1.0, grad_mode='{grad_mode}',
    backbone=dict(type='VisionTransformer', img_size=32, patch_size=8,
                  out_type='avg_featmap', final_norm=False,
                  arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)),
    head=dict(type='EnergyHead', in_channels=32, pool_type='none'),
    data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], to_rgb=True))
train_dataloader = dict(
    batch_size={batch_size}, num_workers=0,
    sampler=dict(type='{sampler}', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CustomDataset', data_root='{data_root}', with_label=False,
                 pipeline=[dict(type='LoadImageFromFile'),
                           dict(type='Resize', scale=(32, 32)),
                           dict(type='SuperResolutionCorruption', scale=4),
                           dict(type='PackInputs')]))
optim_wrapper = dict(optimizer={optimizer},
                     paramwise_cfg=dict(custom_keys=dict(alpha=dict(decay_mult=0.0))))
train_cfg = dict(type='IterBasedTrainLoop', max_iters={max_iters})
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False,
                                     interval={ckpt_interval}),
                     logger=dict(type='LoggerHook', interval=1))
log_processor = dict(by_epoch=False)
load_from = {load_from!r}
randomness = dict(seed=0, diff_rank_seed=False)
"""


def write_config(path: Path, **fields) -> Path:
    fields.setdefault('sampler', 'DefaultSampler')
    fields.setdefault('load_from', None)
    fields.setdefault('grad_mode', 'exact')
    path.write_text(CONFIG.format(**fields))
    return path


def environment(port: int) -> dict:
    return {
        'PATH': f'{Path(sys.executable).parent}:/usr/bin:/bin',
        'PORT': str(port),
        'PYTHON': sys.executable,
        'OMP_NUM_THREADS': '1',
        'HOME': os.environ['HOME'],
    }


def one_step_gradients(initial: dict, checkpoint: Path, lr: float) -> dict:
    after = torch.load(checkpoint)['state_dict']
    return {k: (v - after[k]) / lr for k, v in initial.items() if v.is_floating_point()}


def save_shared_initialization(tmp_path: Path, fields: dict) -> dict:
    """Build the model of ``fields``' config once, save its weights and return ``fields``
    with ``load_from`` set, so that every run starts from the same initialization."""
    import mmpretrain_ebm  # noqa: F401

    cfg = Config.fromfile(write_config(tmp_path / 'init.py', batch_size=4, **fields))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), tmp_path / 'init.pth')
    return dict(fields, load_from=str(tmp_path / 'init.pth'))


@pytest.mark.timeout(900)
@pytest.mark.parametrize('grad_mode', ['exact', 'compiled'])
def test_two_gloo_processes_match_one_process_on_the_same_global_batch(
    tmp_path, photo_crops_dir, grad_mode
):
    lr = 100.0  # plain SGD: (before - after) / lr is the gradient, with full precision
    fields = dict(
        grad_mode=grad_mode,
        data_root=photo_crops_dir,
        max_iters=2,
        ckpt_interval=1,
        optimizer=f"dict(type='SGD', lr={lr}, momentum=0.0, weight_decay=0.0)",
    )
    fields = save_shared_initialization(tmp_path, fields)
    initial = torch.load(tmp_path / 'init.pth')['state_dict']

    single = write_config(tmp_path / 'single.py', batch_size=4, **fields)
    subprocess.run(
        [
            sys.executable,
            str(REPO / 'tools' / 'train.py'),
            str(single),
            '--work-dir',
            str(tmp_path / 'single'),
        ],
        check=True,
        cwd=REPO,
        env=environment(0),
    )
    # two processes with 2 images each: the same 4 images in the first global batch;
    # max_iters=2 also checks that DDP finds every parameter's gradient in the next step
    dist = write_config(tmp_path / 'dist.py', batch_size=2, **fields)
    subprocess.run(
        [
            'bash',
            str(REPO / 'tools' / 'dist_train.sh'),
            str(dist),
            '2',
            '--work-dir',
            str(tmp_path / 'dist'),
        ],
        check=True,
        cwd=REPO,
        env=environment(29541),
    )

    expected = one_step_gradients(initial, tmp_path / 'single' / 'iter_1.pth', lr)
    actual = one_step_gradients(initial, tmp_path / 'dist' / 'iter_1.pth', lr)
    assert expected['alpha'].abs() > 0 and expected['head.fc.weight'].abs().sum() > 0
    for key, grad in expected.items():
        torch.testing.assert_close(actual[key], grad, rtol=1e-3, atol=1e-6, msg=key)
    # the second step too: gradients of every parameter keep being averaged across ranks
    # (the final norm's bias has no second-order path and stays untouched in both runs)
    for run in ('single', 'dist'):
        state = torch.load(tmp_path / run / 'iter_1.pth')['state_dict']
        second = one_step_gradients(state, tmp_path / run / 'iter_2.pth', lr)
        if run == 'single':
            expected = second
    for key, grad in expected.items():
        torch.testing.assert_close(second[key], grad, rtol=1e-3, atol=1e-6, msg=key)
    assert torch.count_nonzero(expected['backbone.ln2.bias']) == 0
    if grad_mode == 'compiled':  # it compiled, once per process, and logged it
        for log in [*(tmp_path / 'single').rglob('*.log'), *(tmp_path / 'dist').rglob('*.log')]:
            assert log.read_text().count('compiled the energy input gradient') == 1, log


def train_command(config: Path, work_dir: Path, *extra: str) -> list:
    return [
        sys.executable,
        str(REPO / 'tools' / 'train.py'),
        str(config),
        '--work-dir',
        str(work_dir),
        *extra,
    ]


@pytest.mark.timeout(900)
@pytest.mark.parametrize('grad_mode', ['exact', 'compiled'])
def test_sigkill_mid_run_then_resume_continues_from_the_checkpoint(
    tmp_path, photo_crops_dir, grad_mode
):
    # 16 images, 2 per batch: an epoch is 8 iterations; checkpoints every 3 fall mid-epoch
    config = write_config(
        tmp_path / 'cfg.py',
        grad_mode=grad_mode,
        data_root=photo_crops_dir,
        batch_size=2,
        max_iters=24,
        ckpt_interval=3,
        sampler='InfiniteSampler',
        optimizer="dict(type='AdamW', lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)",
    )
    killed = tmp_path / 'killed'
    process = subprocess.Popen(
        train_command(config, killed),
        cwd=REPO,
        env=environment(0),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not (killed / 'iter_6.pth').exists() and process.poll() is None:
        assert time.time() < deadline, 'no checkpoint within 300 s'
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, 'training ended before it was killed'
    last = Path((killed / 'last_checkpoint').read_text().strip())
    saved = torch.load(last)
    saved_iter = saved['meta']['iter']
    assert 6 <= saved_iter < 24

    subprocess.run(
        train_command(config, killed, '--resume'),
        check=True,
        cwd=REPO,
        env=environment(0),
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        train_command(config, tmp_path / 'straight'),
        check=True,
        cwd=REPO,
        env=environment(0),
        stdout=subprocess.DEVNULL,
    )

    # the first checkpoint after the resume continues the saved run exactly
    after = saved_iter + 3
    resumed = torch.load(killed / f'iter_{after}.pth')
    reference = torch.load(tmp_path / 'straight' / f'iter_{after}.pth')
    assert resumed['meta']['iter'] == after
    steps = {int(state['step']) for state in resumed['optimizer']['state'].values()}
    assert steps == {after}  # AdamW's state was restored, not restarted
    assert resumed['state_dict']['alpha'] != saved['state_dict']['alpha']
    for key, value in reference['state_dict'].items():  # bit-identical
        torch.testing.assert_close(resumed['state_dict'][key], value, rtol=0, atol=0, msg=key)
    for group, ref_group in zip(
        resumed['optimizer']['param_groups'], reference['optimizer']['param_groups']
    ):
        assert group['lr'] == ref_group['lr']
