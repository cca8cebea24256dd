"""On the device: exact gradients against the independent float64 oracle, stepwise against
whole backward, activation checkpointing, and the finite-difference mode (TF32 on, drop path
replayed on the device's generator) against the exact gradient."""

import pytest
from device_testing import (
    build_from_registry,
    gradients,
    ieee_float32,
    photo_batch,
    problem,
    relative_error,
    tf32_flags,
    tf32_on,
)
from test_gradients import (
    assert_all_close,
    chained_loss,
    compare_with_finite_differences,
    frozen_start_loss,
    input_gradient,
    make_problem,
    probe_points,
)


@pytest.mark.parametrize('backbone', ['vit', 'convnext'])
@pytest.mark.parametrize('num_steps', [1, 2])
def test_exact_gradient_equals_the_float64_oracle(device, backbone, num_steps):
    """N = 1: the derivative of the loss; N = 2: of the frozen-start loss (stop gradient)."""
    model, clean, corrupted = make_problem(backbone, num_steps=num_steps)
    model, clean, corrupted = model.to(device), clean.to(device), corrupted.to(device)
    if num_steps == 1:
        loss_fn = lambda: chained_loss(model, clean, corrupted, 1)  # noqa: E731
    else:
        x1 = corrupted - model.alpha.detach() * input_gradient(model, corrupted)
        loss_fn = lambda: frozen_start_loss(model, clean, [corrupted, x1])  # noqa: E731
    pairs = compare_with_finite_differences(
        model, clean, corrupted, loss_fn, probe_points(model, clean, corrupted)
    )
    if num_steps == 1:  # as the CPU test: at N = 2 some probes are legitimately ~1e-7
        assert all(abs(numeric) > 1e-7 for _, numeric in pairs.values()), pairs
    assert_all_close(pairs)


def gradients_on_and_off(backbone, device, option):
    """The N = 2 gradients with the model option ``option`` True and False (IEEE fp32)."""
    with ieee_float32():
        return {
            value: gradients(*problem(backbone, device, num_steps=2, **{option: value}))
            for value in (True, False)
        }


@pytest.mark.parametrize('backbone', ['vit', 'swin', 'convnext'])
def test_stepwise_backward_equals_the_whole_backward(device, backbone):
    runs = gradients_on_and_off(backbone, device, 'stepwise_backward')
    assert relative_error(runs[True], runs[False]) < 1e-5
    assert relative_error(runs[True], runs[False], prefix='backbone.') < 1e-5


@pytest.mark.parametrize('backbone', ['vit', 'swin', 'convnext'])
def test_activation_checkpointing_gives_the_same_gradients(device, backbone):
    runs = gradients_on_and_off(backbone, device, 'grad_checkpoint')
    assert relative_error(runs[True], runs[False], prefix='backbone.') < 1e-5


def exact_and_finite_difference(device, api: str, drop_path_rate: float):
    """The exact gradient (float32, no TF32) and the finite-difference one with TF32 switched
    on around it, on the same weights, batch and random state."""
    runs = {}
    for mode in ('exact', 'finite_difference'):
        model = build_from_registry(
            'vit', device, dict(drop_path_rate=drop_path_rate), num_steps=2, grad_mode=mode
        )
        clean, corrupted = photo_batch(device, count=8)
        if mode == 'exact':
            with ieee_float32():
                runs[mode] = gradients(model, clean, corrupted)
        else:
            with tf32_on(api):
                flags = tf32_flags(api)
                runs[mode] = gradients(model, clean, corrupted)
                # the mode's float32 passes leave the user's TF32 settings as they were
                assert tf32_flags(api) == flags
    return runs['exact'], runs['finite_difference']


@pytest.mark.parametrize('api', ['legacy', 'new'])
def test_finite_difference_matches_exact_with_tf32_on(device, api):
    """``api='new'``: TF32 switched on through torch's ``fp32_precision`` flags, which torch
    (>= 2.9) refuses to mix with reads of the legacy ``allow_tf32`` flags on CUDA."""
    exact, estimate = exact_and_finite_difference(device, api, drop_path_rate=0.0)
    assert relative_error(estimate, exact, prefix='backbone.') < 2e-2
    assert relative_error(estimate, exact) < 2e-2


def test_finite_difference_replays_drop_path_on_the_device(device):
    """The perturbed pass must draw the first pass's drop paths from the device's generator:
    else its parameter gradients are differences of two different networks."""
    exact, estimate = exact_and_finite_difference(device, 'legacy', drop_path_rate=0.5)
    assert relative_error(estimate, exact, prefix='backbone.') < 2e-2
    # with other paths drawn the two gradients are far apart: the check can fail
    model = build_from_registry('vit', device, dict(drop_path_rate=0.5), num_steps=2)
    clean, corrupted = photo_batch(device, count=8)
    with ieee_float32():
        other_paths = gradients(model, clean, corrupted, seed=6)
    assert relative_error(other_paths, exact, prefix='backbone.') > 0.1
