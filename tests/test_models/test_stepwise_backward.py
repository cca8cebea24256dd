"""stepwise_backward=True: the same gradients with one step's graph alive at a time."""

import subprocess
import sys
import weakref
from collections import Counter

import pytest
import torch
from ebm_testing import build_model, grid_mask, real_photo_batch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from test_train_tools import (
    REPO,
    environment,
    one_step_gradients,
    save_shared_initialization,
    write_config,
)

from mmpretrain_ebm.models.utils import StepwiseGradients


def loss_total(losses: dict) -> torch.Tensor:
    return sum(v for k, v in losses.items() if 'loss' in k)


def problem(backbone: str, num_steps: int, dtype=torch.float64, **kwargs):
    torch.manual_seed(0)
    model = build_model(backbone, num_steps=num_steps, log_clean_energy=False, **kwargs).to(dtype)
    clean = real_photo_batch(count=4).to(dtype)
    return model, clean, grid_mask(clean, generator=torch.Generator().manual_seed(1))


def gradients(model, clean, corrupted, stepwise: bool, outer_scale: float = 1.0):
    model.stepwise_backward = stepwise
    model.zero_grad()
    losses = model.loss([clean, corrupted])
    (outer_scale * loss_total(losses)).backward()
    grads = {n: p.grad / outer_scale for n, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in losses.items()}, grads


@pytest.mark.parametrize('backbone', ['vit', 'convnext'])
def test_gradients_and_losses_equal_the_plain_backward(backbone):
    model, clean, corrupted = problem(backbone, num_steps=3)
    plain_losses, plain = gradients(model, clean, corrupted, stepwise=False)
    losses, stepwise = gradients(model, clean, corrupted, stepwise=True)
    assert losses.keys() == plain_losses.keys()
    for key, value in plain_losses.items():
        assert losses[key].item() == value.item(), key  # logged values are unchanged
    assert stepwise.keys() == plain.keys() and plain['alpha'].abs() > 0
    for name, grad in plain.items():
        torch.testing.assert_close(stepwise[name], grad, rtol=1e-10, atol=1e-18, msg=name)


class SavedTensorBytes:
    """Peak bytes of the storages that autograd graphs hold (saved-tensor hooks)."""

    def __init__(self) -> None:
        self.holders, self.alive, self.peak = Counter(), 0, 0

    class _Held:
        __slots__ = ('tensor', '__weakref__')

    def pack(self, tensor: torch.Tensor):
        held = self._Held()
        held.tensor = tensor
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if self.holders[key] == 0:
            self.alive += storage.nbytes()
            self.peak = max(self.peak, self.alive)
        self.holders[key] += 1
        weakref.finalize(held, self._release, key, storage.nbytes())
        return held

    def _release(self, key: int, nbytes: int) -> None:
        self.holders[key] -= 1
        if self.holders[key] == 0:
            self.alive -= nbytes

    @staticmethod
    def unpack(held):
        return held.tensor


def peak_graph_bytes(model, clean, corrupted, stepwise: bool) -> int:
    model.stepwise_backward = stepwise
    tracker = SavedTensorBytes()
    with torch.autograd.graph.saved_tensors_hooks(tracker.pack, tracker.unpack):
        loss_total(model.loss([clean, corrupted])).backward()
    return tracker.peak


def test_only_one_step_graph_is_alive():
    # the probe is a saved-tensor hook: the energy passes' own hooks must be off
    lean = dict(recompute_elementwise=False)
    model, clean, corrupted = problem('vit', num_steps=2, dtype=torch.float32, **lean)
    plain = peak_graph_bytes(model, clean, corrupted, stepwise=False)
    stepwise = peak_graph_bytes(model, clean, corrupted, stepwise=True)
    single = peak_graph_bytes(
        *problem('vit', num_steps=1, dtype=torch.float32, **lean), stepwise=False
    )
    assert stepwise <= 1.05 * single and stepwise < 0.65 * plain, (stepwise, single, plain)


def test_gradient_accumulation_in_the_optim_wrapper():
    """accumulative_counts=2: two losses, one update, equal to the plain path's."""
    final = {}
    for stepwise in (False, True):
        model, clean, corrupted = problem('vit', num_steps=2)
        model.stepwise_backward = stepwise
        wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=10.0), accumulative_counts=2)
        for batch in (slice(0, 2), slice(2, 4)):
            with wrapper.optim_context(model):
                loss, _ = model.parse_losses(model.loss([clean[batch], corrupted[batch]]))
            wrapper.update_params(loss)
        final[stepwise] = {k: v.clone() for k, v in model.state_dict().items()}
    for key, value in final[False].items():
        torch.testing.assert_close(final[True][key], value, rtol=1e-10, atol=1e-15, msg=key)


def test_fp16_early_steps_are_scaled_and_overflow_is_passed_on():
    model, clean, corrupted = problem('vit', num_steps=2, dtype=torch.float32)
    with torch.autocast('cpu', dtype=torch.float16):
        _, plain = gradients(model, clean, corrupted, stepwise=False, outer_scale=2.0**16)
        _, stepwise = gradients(model, clean, corrupted, stepwise=True, outer_scale=2.0**16)
    assert model.step_loss_scaler.scale == 2.0**16
    # the plain path sums the steps' gradients of fp16 weight casts in fp16, this one in
    # float32: equal up to fp16 rounding (measured 6e-4)
    for name, grad in plain.items():
        assert (stepwise[name] - grad).norm() <= 2e-3 * grad.norm(), name
    # an early step that overflows at its scale: the scale backs off, and the non-finite
    # gradient reaches .grad so that AmpOptimWrapper skips the update
    model.step_loss_scaler.scale = 2.0**200
    with torch.autocast('cpu', dtype=torch.float16):
        gradients(model, clean, corrupted, stepwise=True)
    assert model.step_loss_scaler.scale == 2.0**199
    assert not all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def run_dist_train(config, work_dir, port: int) -> None:
    """tools/dist_train.sh on 2 processes; fails unless every process exits cleanly."""
    result = subprocess.run(
        [
            'bash',
            str(REPO / 'tools' / 'dist_train.sh'),
            str(config),
            '2',
            '--work-dir',
            str(work_dir),
        ],
        cwd=REPO,
        env=environment(port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def add_model_options(config_path, options: dict):
    with open(config_path, 'a') as config:
        for key, value in options.items():
            config.write(f'model[{key!r}] = {value!r}\n')
    assert all(Config.fromfile(config_path).model[k] == v for k, v in options.items())


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    'single_options, dist_options, rtol, port',
    [
        ({}, dict(stepwise_backward=True), 1e-3, 29543),
        (dict(grad_mode='finite_difference'), dict(grad_mode='finite_difference'), 1e-2, 29544),
    ],
    ids=['stepwise', 'finite_difference'],
)
def test_two_gloo_processes_match_one_process(
    tmp_path, photo_crops_dir, single_options, dist_options, rtol, port
):
    """DDP: one all-reduce of the right gradient, every iteration. Stepwise: equal to the
    plain single-process run. Finite difference (a backward inside DDP's backward): equal up
    to the estimate's error, whose eps follows each process's own batch."""
    lr = 100.0  # plain SGD: (before - after) / lr is the gradient
    fields = dict(
        data_root=photo_crops_dir,
        max_iters=2,
        ckpt_interval=1,
        optimizer=f"dict(type='SGD', lr={lr}, momentum=0.0, weight_decay=0.0)",
    )
    fields = save_shared_initialization(tmp_path, fields)
    initial = torch.load(tmp_path / 'init.pth')['state_dict']

    single = write_config(tmp_path / 'single.py', batch_size=4, **fields)
    add_model_options(single, single_options)
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
        stdout=subprocess.DEVNULL,
    )
    dist = write_config(tmp_path / 'dist.py', batch_size=2, **fields)
    add_model_options(dist, dist_options)
    run_dist_train(dist, tmp_path / 'dist', port)

    for previous, current in ((None, 'iter_1.pth'), ('iter_1.pth', 'iter_2.pth')):
        start = {
            run: initial
            if previous is None
            else torch.load(tmp_path / run / previous)['state_dict']
            for run in ('single', 'dist')
        }
        expected = one_step_gradients(start['single'], tmp_path / 'single' / current, lr)
        actual = one_step_gradients(start['dist'], tmp_path / 'dist' / current, lr)
        assert expected['alpha'].abs() > 0 and expected['head.fc.weight'].abs().sum() > 0
        for key, grad in expected.items():
            torch.testing.assert_close(actual[key], grad, rtol=rtol, atol=1e-6, msg=key)


def test_early_gradients_become_grad_without_a_copy():
    """The accumulated sum is handed to .grad in place: no second parameter-sized buffer."""
    weight = torch.nn.Parameter(torch.randn(1000, dtype=torch.float64))
    gradients = StepwiseGradients([weight])
    gradients.backward_now((weight**2).sum())
    storage = gradients.accumulated[0].data_ptr()
    loss = (3 * weight).sum() + gradients.surrogate(like=torch.zeros((), dtype=torch.float64))
    del gradients
    (2.0 * loss).backward()
    assert weight.grad.data_ptr() == storage
    torch.testing.assert_close(weight.grad, 2 * (2 * weight.detach() + 3))
    with pytest.raises(RuntimeError, match='backpropagate the loss once'):
        loss.backward()
