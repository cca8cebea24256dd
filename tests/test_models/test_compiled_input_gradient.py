"""grad_mode='compiled': the exact step's gradients from one torch.compile-d graph.

Checked the way every estimator is: against the independent float64 oracle of
``test_gradients`` (central differences of the loss, frozen start for N = 2), and against
``grad_mode='exact'`` on the same weights and random draws (float64, float32, bf16). Then
what it refuses and how it compiles (one graph, once per shape, loudly when it cannot).
"""

import copy
import pickle

import numpy as np
import pytest
import torch
from ebm_testing import TINY_BACKBONES, build_model, grid_mask, real_photo_batch
from mmengine.logging import MMLogger
from test_gradients import (
    assert_all_close,
    chained_loss,
    compare_with_finite_differences,
    frozen_start_loss,
    input_gradient,
    make_problem,
    probe_points,
)
from torch._dynamo.utils import counters

from mmpretrain_ebm.models import EnergyRestorationAlgorithm
from mmpretrain_ebm.models.utils import CompilationError, CompiledInputGradient

pytestmark = pytest.mark.timeout(900)


def compiled_twin(model, **kwargs):
    """A ``grad_mode='compiled'`` model with ``model``'s weights, dtype and settings."""
    twin = build_model(kwargs.pop('backbone', 'vit'), grad_mode='compiled', **kwargs)
    twin.to(next(model.parameters()).dtype).load_state_dict(model.state_dict())
    return twin


def step_gradients(model, clean, corrupted, seed: int = 3):
    """Loss terms and ``.grad`` of every parameter after one backward of the loss (the
    random state fixed, so drop path draws the same in both modes)."""
    model.zero_grad()
    torch.manual_seed(seed)
    losses = model.loss([clean, corrupted])
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in losses.items() if 'loss' in k}, grads


def max_relative_error(estimate, reference) -> float:
    """Worst relative error over the parameters. Those the second-order path never reaches
    get no gradient from double backward and an exact zero from the compiled graph."""
    assert set(reference) <= set(estimate)
    for name in set(estimate) - set(reference):
        assert not estimate[name].any(), name
    return max(
        float((estimate[k] - v).norm() / v.norm()) for k, v in reference.items() if v.norm() > 0
    )


@pytest.mark.parametrize('backbone', ['vit', 'convnext'])
@pytest.mark.parametrize('num_steps', [1, 2])
def test_float64_gradient_equals_the_finite_difference_oracle(backbone, num_steps):
    exact, clean, corrupted = make_problem(backbone, num_steps=num_steps)
    model = compiled_twin(exact, backbone=backbone, num_steps=num_steps, log_clean_energy=False)
    points = probe_points(exact, clean, corrupted)
    if num_steps == 1:
        loss_fn = lambda: chained_loss(model, clean, corrupted, 1)  # noqa: E731
    else:
        x1 = corrupted - model.alpha.detach() * input_gradient(model, corrupted)
        loss_fn = lambda: frozen_start_loss(model, clean, [corrupted, x1])  # noqa: E731
    pairs = compare_with_finite_differences(model, clean, corrupted, loss_fn, points)
    assert abs(pairs['head.fc.weight'][1]) > 1e-7 and abs(pairs['alpha'][1]) > 1e-7, pairs
    assert_all_close(pairs)
    assert model.input_gradient.compile_seconds, 'the compiled graph did not run'


@pytest.mark.parametrize('backbone', ['vit', 'convnext', 'swin'])
def test_float64_gradients_equal_the_exact_mode(backbone):
    """To rounding (1e-10), with Swin's default drop path on: the compiled graph draws the
    random numbers eager draws (``fallback_random``)."""
    exact, clean, corrupted = make_problem(backbone, num_steps=2)
    model = compiled_twin(exact, backbone=backbone, num_steps=2, log_clean_energy=False)
    if backbone == 'swin':
        assert any(getattr(m, 'drop_prob', 0) > 0 for m in model.modules())
    losses, grads = step_gradients(model, clean, corrupted)
    reference_losses, reference = step_gradients(exact, clean, corrupted)
    assert max_relative_error(grads, reference) < 1e-10
    assert max_relative_error(losses, reference_losses) < 1e-12
    assert reference['alpha'].abs() > 0 and reference['head.fc.weight'].abs().sum() > 0


@pytest.mark.parametrize('backbone', ['vit', 'swin'])
def test_float32_gradients_equal_the_exact_mode(backbone):
    torch.manual_seed(0)
    exact = build_model(backbone, num_steps=2, log_clean_energy=False)
    model = compiled_twin(exact, backbone=backbone, num_steps=2, log_clean_energy=False)
    clean = real_photo_batch(count=4)
    corrupted = grid_mask(clean, generator=torch.Generator().manual_seed(1))
    _, grads = step_gradients(model, clean, corrupted)
    _, reference = step_gradients(exact, clean, corrupted)
    assert max_relative_error(grads, reference) < 1e-5


def test_bf16_autocast_is_as_close_to_float32_as_the_exact_mode():
    """Under bf16 autocast both modes land about as far from the float32 gradients."""
    torch.manual_seed(0)
    exact = build_model('vit', num_steps=2, log_clean_energy=False)
    model = compiled_twin(exact, num_steps=2, log_clean_energy=False)
    clean = real_photo_batch(count=4)
    corrupted = grid_mask(clean, generator=torch.Generator().manual_seed(1))
    _, reference = step_gradients(exact, clean, corrupted)
    errors = {}
    for name, candidate in (('exact', exact), ('compiled', model)):
        with torch.autocast('cpu', dtype=torch.bfloat16):
            _, grads = step_gradients(candidate, clean, corrupted)
        errors[name] = max_relative_error(grads, reference)
    assert errors['compiled'] < 5e-2, errors
    assert errors['compiled'] < 2 * errors['exact'] + 1e-3, errors


def test_compiles_once_per_shape_and_logs_the_time(monkeypatch):
    torch.manual_seed(0)
    model = build_model('vit', num_steps=2, log_clean_energy=False, grad_mode='compiled')
    clean = real_photo_batch(count=2)
    corrupted = grid_mask(clean, generator=torch.Generator().manual_seed(1))
    logged = []
    monkeypatch.setattr(MMLogger.get_current_instance(), 'info', logged.append)
    counters.clear()
    for _ in range(3):  # two steps a batch, three batches: one graph
        step_gradients(model, clean, corrupted)
    assert counters['stats']['unique_graphs'] == 1, dict(counters['stats'])
    assert list(model.input_gradient.compile_seconds) == [
        ((2, 3, 32, 32), torch.float32, 'cpu', False)
    ]
    assert len(logged) == 1 and '[2, 3, 32, 32]' in logged[0], logged
    step_gradients(model, clean[:1], corrupted[:1])  # another shape: compiled once more
    assert counters['stats']['unique_graphs'] == 2 and len(logged) == 2


def test_numpy_drop_probabilities_do_not_break_the_graph():
    """mmpretrain stores its drop-path schedule as numpy floats, on which mmcv's drop_path
    branches: a graph break, which ``fullgraph=True`` would turn into an error."""
    cfg, width = TINY_BACKBONES['vit']
    model = EnergyRestorationAlgorithm(
        backbone=dict(copy.deepcopy(cfg), drop_path_rate=0.1),
        head=dict(type='EnergyHead', in_channels=width),
        grad_mode='compiled',
        log_clean_energy=False,
    )
    probs = [m.drop_prob for m in model.modules() if hasattr(m, 'drop_prob')]
    assert probs and all(type(p) is float for p in probs) and max(probs) == pytest.approx(0.1)
    clean = real_photo_batch(count=2)
    _, grads = step_gradients(model, clean, grid_mask(clean))
    assert grads['backbone.layers.0.attn.qkv.weight'].abs().sum() > 0


def test_restoration_without_a_graph_runs_eagerly(photos):
    model = build_model('vit', num_steps=2, grad_mode='compiled')
    model.eval()
    chain = model.restore(grid_mask(photos[:2]))
    assert len(chain) == 3 and not chain[-1].requires_grad
    assert model.input_gradient.compile_seconds == {}


class _GraphBreak(torch.nn.Module):
    def forward(self, x):
        torch._dynamo.graph_break()
        return x


def test_a_graph_break_fails_loudly_and_names_the_way_out(photos):
    model = build_model('convnext', num_steps=1, grad_mode='compiled')
    model.backbone.downsample_layers[0].append(_GraphBreak())
    with pytest.raises(CompilationError, match=r"ConvNeXt .*one graph.*grad_mode='exact'"):
        model.loss([photos[:2], grid_mask(photos[:2])])


def test_train_mode_batchnorm_is_refused_with_its_name():
    with pytest.raises(ValueError, match=r"BatchNorm.*backbone\.bn1 .*grad_mode='exact'"):
        build_model('resnet', grad_mode='compiled')


def test_activation_checkpointing_is_refused():
    with pytest.raises(
        ValueError, match="grad_checkpoint=True cannot be used with grad_mode='compiled'"
    ):
        build_model('vit', grad_mode='compiled', grad_checkpoint=True)


def test_fp16_autocast_is_refused(photos):
    model = build_model('vit', num_steps=1, grad_mode='compiled')
    with torch.autocast('cpu', dtype=torch.float16), pytest.raises(RuntimeError, match='fp16'):
        model.loss([photos[:2], grid_mask(photos[:2])])


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(backend='fast'), "backend must be one of .*got 'fast'"),
        (dict(mode='fastest'), "mode must be None or one of .*'max-autotune'.*got 'fastest'"),
    ],
)
def test_bad_compile_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CompiledInputGradient(**kwargs)


def test_copies_and_pickles_leave_the_compiled_graph_behind(photos):
    """EMA deep-copies the model; a copy compiles its own graph on first use."""
    model = build_model('vit', num_steps=1, grad_mode='compiled', log_clean_energy=False)
    clean, corrupted = photos[:2], grid_mask(photos[:2])
    _, grads = step_gradients(model, clean, corrupted)
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert twin.input_gradient.compile_seconds == {}
        _, twin_grads = step_gradients(twin, clean, corrupted)
        assert max_relative_error(twin_grads, grads) < 1e-6
        assert np.isfinite(list(twin.input_gradient.compile_seconds.values())[0])
