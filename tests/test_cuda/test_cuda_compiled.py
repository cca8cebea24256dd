"""On the device: grad_mode='compiled' (inductor's kernels for the device) against the float64
oracle, against the exact mode in float32, and under bf16 autocast against float32."""

import pytest
from device_testing import gradients, ieee_float32, problem, relative_error
from test_gradients import (
    assert_all_close,
    chained_loss,
    compare_with_finite_differences,
    frozen_start_loss,
    input_gradient,
    make_problem,
    probe_points,
)

from mmpretrain_ebm.models import EnergyRestorationAlgorithm

BF16_TOLERANCE = 3e-2  # as test_cuda_amp's bf16 tolerance for the exact mode


def compiled_copy(model: EnergyRestorationAlgorithm, device) -> EnergyRestorationAlgorithm:
    """The same weights behind ``grad_mode='compiled'``."""
    from ebm_testing import build_model

    backbone = {'VisionTransformer': 'vit', 'ConvNeXt': 'convnext', 'SwinTransformer': 'swin'}
    twin = build_model(
        backbone[type(model.backbone).__name__],
        num_steps=model.num_steps,
        grad_mode='compiled',
        log_clean_energy=False,
    )
    twin.to(dtype=next(model.parameters()).dtype).load_state_dict(model.state_dict())
    return twin.to(device)


@pytest.mark.parametrize('backbone', ['vit', 'convnext'])
@pytest.mark.parametrize('num_steps', [1, 2])
def test_compiled_gradient_equals_the_float64_oracle(device, backbone, num_steps):
    exact, clean, corrupted = make_problem(backbone, num_steps=num_steps)
    points = probe_points(exact, clean, corrupted)
    model = compiled_copy(exact, device)
    clean, corrupted = clean.to(device), corrupted.to(device)
    if num_steps == 1:
        loss_fn = lambda: chained_loss(model, clean, corrupted, 1)  # noqa: E731
    else:
        x1 = corrupted - model.alpha.detach() * input_gradient(model, corrupted)
        loss_fn = lambda: frozen_start_loss(model, clean, [corrupted, x1])  # noqa: E731
    assert_all_close(compare_with_finite_differences(model, clean, corrupted, loss_fn, points))


@pytest.mark.parametrize('backbone', ['vit', 'swin', 'convnext'])
def test_compiled_float32_gradients_equal_the_exact_mode(device, backbone):
    exact, clean, corrupted = problem(backbone, device, num_steps=2)
    model = compiled_copy(exact, device)
    with ieee_float32():
        reference = gradients(exact, clean, corrupted)
        estimate = gradients(model, clean, corrupted)
    assert relative_error(estimate, reference) < 1e-5
    assert relative_error(estimate, reference, prefix='backbone.') < 1e-5


@pytest.mark.parametrize('backbone', ['vit', 'swin'])
def test_compiled_bf16_gradients_are_as_close_to_float32_as_the_exact_mode(device, backbone):
    import torch

    exact, clean, corrupted = problem(backbone, device, num_steps=2)
    model = compiled_copy(exact, device)
    with ieee_float32():
        reference = gradients(exact, clean, corrupted)
    estimate = gradients(model, clean, corrupted, dtype=torch.bfloat16)
    assert relative_error(estimate, reference, prefix='backbone.') < BF16_TOLERANCE
