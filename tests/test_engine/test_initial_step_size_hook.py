"""InitialStepSizeHook in real (tiny) pretraining runs: alpha from the first batch, kept on
resume, the same on every DDP rank."""

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from demo_testing import REPO, tiny_demo_config
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmpretrain_ebm  # noqa: F401  (registers the hook, the algorithm, the corruptions)
from mmpretrain_ebm.engine.hooks import InitialStepSizeHook
from mmpretrain_ebm.engine.hooks.initial_step_size_hook import META_KEY


def tiny_config(data_dir: Path, work_dir: Path, max_iters: int, target_rms: float) -> Config:
    """The tiny demo config with alpha 1, a checkpoint every 2 iterations and only the
    step-size hook."""
    cfg = tiny_demo_config(data_dir, work_dir, max_iters)
    cfg.model.alpha = 1.0
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=2)
    cfg.custom_hooks = [dict(type='InitialStepSizeHook', target_rms=target_rms)]
    return cfg


def first_step_rms(model, data_batch) -> float:
    """RMS of x~1 - x~0 = -alpha dE/dx on a batch, recomputed independently."""
    data = model.data_preprocessor(data_batch, training=True)
    corrupted = data['inputs'][1].detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.energy(corrupted).sum(), corrupted)
    return float((model.alpha.detach() * grad).square().mean().sqrt())


def test_sets_alpha_for_the_target_first_step_and_trains_the_same_parameter(
    photo_crops_dir, tmp_path
):
    cfg = tiny_config(photo_crops_dir, tmp_path, max_iters=2, target_rms=0.2)
    runner = Runner.from_cfg(cfg)
    seen = {}

    class Probe(Hook):  # a bare Hook, run after ours
        priority = 'LOWEST'

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if 'alpha' not in seen:
                seen['alpha'] = runner.model.alpha.detach().clone()
                seen['rms'] = first_step_rms(runner.model, data_batch)

    runner.register_hook(Probe())
    alpha_param = runner.model.alpha
    runner.train()

    hook = next(h for h in runner.hooks if isinstance(h, InitialStepSizeHook))
    assert hook.record['target_rms'] == 0.2 and hook.record['iter'] == 0
    # the first step of the first batch moves the pixels by the target, in RMS
    assert seen['rms'] == pytest.approx(0.2, rel=1e-4)
    assert float(seen['alpha']) == pytest.approx(hook.record['alpha'], rel=1e-6)
    assert hook.record['alpha'] == pytest.approx(0.2 / hook.record['grad_rms'], rel=1e-6)
    assert hook.record['alpha'] > 10  # tiny ViT: dE/dx ~ 1e-3, far from the configured 1.0
    # set in place: the optimizer's parameter is the model's, and it was trained
    assert runner.model.alpha is alpha_param
    optimized = [p for group in runner.optim_wrapper.param_groups for p in group['params']]
    assert any(p is alpha_param for p in optimized)
    assert float(alpha_param.detach()) != pytest.approx(hook.record['alpha'], rel=1e-9)
    # logged and checkpointed
    log = next(tmp_path.glob('*/*.log')).read_text()
    assert 'InitialStepSizeHook: RMS dE/dx' in log and f'{hook.record["alpha"]:.6g}' in log
    checkpoint = torch.load(tmp_path / 'iter_2.pth', map_location='cpu', weights_only=True)
    assert checkpoint['meta'][META_KEY] == hook.record


def resume_and_probe_alpha(cfg: Config, checkpoint: Path, resume: bool = True):
    """Resume ``cfg`` from ``checkpoint`` (or only load its weights: ``resume=False``) and
    train; return the runner and the model's alpha as the first iteration starts (after
    every other hook's ``before_train_iter``)."""
    cfg.resume, cfg.load_from = resume, str(checkpoint)
    runner = Runner.from_cfg(cfg)
    seen = {}

    class Probe(Hook):
        priority = 'LOWEST'

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            seen.setdefault('alpha', float(runner.model.alpha.detach()))

    runner.register_hook(Probe())
    runner.train()
    return runner, seen['alpha']


def test_resume_keeps_alpha_and_does_not_recompute(photo_crops_dir, tmp_path):
    runner = Runner.from_cfg(tiny_config(photo_crops_dir, tmp_path, max_iters=2, target_rms=0.2))
    runner.train()
    record = next(h for h in runner.hooks if isinstance(h, InitialStepSizeHook)).record
    saved = torch.load(tmp_path / 'iter_2.pth', map_location='cpu', weights_only=True)
    saved_alpha = float(saved['state_dict']['alpha'])

    # resume with another target: it must not be used
    cfg = tiny_config(photo_crops_dir, tmp_path / 'resumed', max_iters=3, target_rms=5.0)
    resumed, first_alpha = resume_and_probe_alpha(cfg, tmp_path / 'iter_2.pth')
    hook = next(h for h in resumed.hooks if isinstance(h, InitialStepSizeHook))
    assert hook.record == record  # from the checkpoint, not recomputed for 5.0
    assert first_alpha == saved_alpha
    log = next((tmp_path / 'resumed').glob('*/*.log')).read_text()
    assert 'not recomputed' in log and 'InitialStepSizeHook: RMS dE/dx' not in log
    final = torch.load(tmp_path / 'resumed' / 'iter_3.pth', map_location='cpu', weights_only=True)
    assert final['meta'][META_KEY] == record


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(target_rms=0), 'target_rms'),
        (dict(target_rms=-1.0), 'target_rms'),
        (dict(target_rms=math.inf), 'target_rms'),
        (dict(target_rms=True), 'target_rms'),
        (dict(target_rms='0.1'), 'target_rms'),
        (dict(min_alpha=10.0, max_alpha=1.0), 'min_alpha'),
    ],
)
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InitialStepSizeHook(**kwargs)


def test_zero_gradient_gives_the_clipped_bound(photo_crops_dir, tmp_path):
    cfg = tiny_config(photo_crops_dir, tmp_path, max_iters=1, target_rms=0.1)
    cfg.custom_hooks = [dict(type='InitialStepSizeHook', target_rms=0.1, max_alpha=50.0)]
    runner = Runner.from_cfg(cfg)
    torch.nn.init.zeros_(runner.model.head.fc.weight)  # E = 0 everywhere: dE/dx = 0
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, InitialStepSizeHook))
    assert hook.record['grad_rms'] == 0.0 and hook.record['alpha'] == 50.0


DDP_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    import torch.distributed as dist
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    sys.path[:0] = [{tests!r}, {tests_root!r}]
    from test_initial_step_size_hook import tiny_config
    from mmpretrain_ebm.engine.hooks import InitialStepSizeHook
    from mmpretrain_ebm.utils import adapt_config_to_cpu_distributed
    cfg = tiny_config({data!r}, {work!r}, max_iters=1, target_rms=0.2)
    cfg.launcher = 'pytorch'
    adapt_config_to_cpu_distributed(cfg, 'pytorch')
    runner = Runner.from_cfg(cfg)

    class Probe(Hook):  # dE/dx on this rank's first batch, with the same weights
        priority = 'LOWEST'

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            model = runner.model.module
            corrupted = model.data_preprocessor(data_batch, training=True)['inputs'][1]
            x = corrupted.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(model.energy(x).sum(), x)
            grad = grad.double()
            with open(f'{{runner.work_dir}}/grad_{{dist.get_rank()}}.txt', 'w') as file:
                file.write(f'{{grad.square().sum().item()!r}} {{grad.numel()}}')

    runner.register_hook(Probe())
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, InitialStepSizeHook))
    with open(f'{{runner.work_dir}}/record_{{dist.get_rank()}}.txt', 'w') as file:
        file.write(f"{{hook.record['alpha']!r}} {{hook.record['grad_rms']!r}}")
    """
)


def test_ddp_ranks_agree_on_alpha_from_all_their_batches(photo_crops_dir, tmp_path):
    script = tmp_path / 'ddp_run.py'
    script.write_text(
        DDP_SCRIPT.format(
            tests=str(Path(__file__).parent),
            tests_root=str(Path(__file__).parents[1]),
            data=str(photo_crops_dir),
            work=str(tmp_path / 'w'),
        )
    )
    env = dict(os.environ, PYTHONPATH=f'{REPO}{os.pathsep}{os.environ.get("PYTHONPATH", "")}')
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # each rank writes its files (the two processes' stdout lines interleave)
    work = tmp_path / 'w'
    assert sorted(p.name for p in work.glob('*_?.txt')) == [
        'grad_0.txt',
        'grad_1.txt',
        'record_0.txt',
        'record_1.txt',
    ]
    records = {r: (work / f'record_{r}.txt').read_text().split() for r in '01'}
    grads = {}
    for rank in '01':
        text = (work / f'grad_{rank}.txt').read_text().split()
        grads[rank] = float(text[0]), int(text[1])
    assert records['0'] == records['1']  # same alpha and statistic on both ranks
    # the value of both ranks' batches pooled: sqrt(sum g^2 / count) over both
    pooled_rms = math.sqrt(sum(s for s, _ in grads.values()) / sum(n for _, n in grads.values()))
    alpha = float(records['0'][0])
    assert alpha == pytest.approx(0.2 / pooled_rms, rel=1e-6)
    assert float(records['0'][1]) == pytest.approx(pooled_rms, rel=1e-6)
    # the ranks' batches differ: rank 0's alone (e.g. a broadcast) would give another alpha
    alone = [0.2 / math.sqrt(s / n) for s, n in grads.values()]
    assert all(abs(a / alpha - 1) > 1e-3 for a in alone), (alone, alpha)


def test_load_from_a_checkpoint_with_the_record_keeps_its_alpha(photo_crops_dir, tmp_path):
    runner = Runner.from_cfg(tiny_config(photo_crops_dir, tmp_path, max_iters=2, target_rms=0.2))
    runner.train()
    record = next(h for h in runner.hooks if isinstance(h, InitialStepSizeHook)).record
    saved = torch.load(tmp_path / 'iter_2.pth', map_location='cpu', weights_only=True)
    assert saved['meta'][META_KEY] == record

    # a new run (iteration 0) from those weights, with another target: alpha is not recomputed
    cfg = tiny_config(photo_crops_dir, tmp_path / 'loaded', max_iters=1, target_rms=5.0)
    loaded, first_alpha = resume_and_probe_alpha(cfg, tmp_path / 'iter_2.pth', resume=False)
    assert loaded.iter == 1  # a new run of 1 iteration, not a resumed one
    assert first_alpha == float(saved['state_dict']['alpha'])
    hook = next(h for h in loaded.hooks if isinstance(h, InitialStepSizeHook))
    assert hook.record == record
    log = next((tmp_path / 'loaded').glob('*/*.log')).read_text()
    assert 'not recomputed' in log and 'InitialStepSizeHook: RMS dE/dx' not in log


def test_resume_from_a_checkpoint_without_the_record_keeps_its_alpha(photo_crops_dir, tmp_path):
    runner = Runner.from_cfg(tiny_config(photo_crops_dir, tmp_path, max_iters=2, target_rms=0.2))
    runner.train()
    checkpoint = torch.load(tmp_path / 'iter_2.pth', map_location='cpu', weights_only=True)
    del checkpoint['meta'][META_KEY]  # as written before the hook existed
    checkpoint['state_dict']['alpha'] = torch.tensor(7.5)
    torch.save(checkpoint, tmp_path / 'old.pth')

    cfg = tiny_config(photo_crops_dir, tmp_path / 'resumed', max_iters=3, target_rms=0.2)
    _, first_alpha = resume_and_probe_alpha(cfg, tmp_path / 'old.pth')
    assert first_alpha == 7.5
    log = next((tmp_path / 'resumed').glob('*/*.log')).read_text()
    assert 'does not record an initial step size; keeping its alpha 7.5' in log
