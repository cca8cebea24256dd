"""grad_mode='finite_difference': the second-order term from two first-order passes.

Reference: the exact (double backward) training gradient of the same model, same batch and
same random state, in float32. "Relative error" is ||g_fd - g_exact|| / ||g_exact|| over all
parameters together.
"""

import pytest
import torch
import torch.nn.functional as F
from ebm_testing import build_model, grid_mask, real_photo_batch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from mmpretrain_ebm.models.utils import build_input_gradient, in_energy_pass


def super_resolution(clean: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """Nearest-neighbour upsampling of the ``scale``-times average-pooled batch."""
    return F.interpolate(F.avg_pool2d(clean, scale), scale_factor=scale, mode='nearest')


def training_gradients(model, clean, corrupted, seed: int = 5) -> dict:
    """Parameter gradients of one loss (random state fixed: dropout and drop path)."""
    torch.manual_seed(seed)
    model.zero_grad()
    losses = model.loss([clean, corrupted])
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def exact_and_estimate(
    backbone: str,
    corrupt,
    autocast: bool = False,
    drop_path: float = 0.0,
    random_conv_bias: bool = False,
):
    torch.manual_seed(0)
    model = build_model(backbone, num_steps=2, log_clean_energy=False)
    if random_conv_bias:  # PyTorch's conv init, as configs/_base_/models/ebm_convnext-tiny.py
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                module.reset_parameters()
    drop_paths = [m for m in model.modules() if type(m).__name__ == 'DropPath']
    for module in drop_paths:
        module.drop_prob = drop_path
    assert drop_paths or not drop_path
    clean = real_photo_batch(count=8)
    corrupted = corrupt(clean)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    exact = training_gradients(model, clean, corrupted)
    model.load_state_dict(state)
    model.input_gradient = build_input_gradient('finite_difference')
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        estimate = training_gradients(model, clean, corrupted)
    return exact, estimate


def relative_error(exact: dict, estimate: dict) -> float:
    assert set(estimate) >= set(exact)
    difference = torch.cat([(estimate[n] - exact[n]).flatten() for n in exact])
    return (difference.norm() / torch.cat([g.flatten() for g in exact.values()]).norm()).item()


def masked(clean):
    return grid_mask(clean, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(
    'backbone, corrupt, random_conv_bias',
    [
        ('vit', masked, False),
        ('convnext', super_resolution, False),
        ('convnext', masked, True),
    ],
)
def test_estimate_matches_the_exact_gradient(backbone, corrupt, random_conv_bias):
    """ConvNeXt with masks needs non-zero conv biases (as its config has): with mmpretrain's
    zero biases a masked cell is a LayerNorm singularity (see finite_difference)."""
    exact, estimate = exact_and_estimate(backbone, corrupt, random_conv_bias=random_conv_bias)
    assert relative_error(exact, estimate) <= 1e-2
    # alpha's gradient -<dE/dx, dL/dx_n> is computed exactly, not estimated
    assert estimate['alpha'].item() == pytest.approx(exact['alpha'].item(), rel=1e-5)


def test_drop_path_is_replayed_in_the_perturbed_pass():
    """With stochastic depth the perturbed pass must drop the same paths as the first."""
    exact, estimate = exact_and_estimate('vit', masked, drop_path=0.5)
    assert relative_error(exact, estimate) <= 1e-2


def test_bf16_autocast_runs_the_passes_in_float32():
    """Under bf16 autocast the estimate still matches the float32 exact gradient."""
    exact, estimate = exact_and_estimate('vit', masked, autocast=True)
    assert relative_error(exact, estimate) <= 1e-2


def test_fused_attention_kernels_are_allowed():
    """Only the CPU flash kernel is enabled: exact mode switches to math attention itself,
    the finite-difference mode runs on the fused kernel (no double backward needed)."""
    torch.manual_seed(0)
    model = build_model('vit', num_steps=1, log_clean_energy=False)
    math_only = []
    model.backbone.register_forward_pre_hook(lambda *_: math_only.append(in_energy_pass()))
    clean = real_photo_batch(count=4)
    exact = training_gradients(model, clean, masked(clean))
    assert math_only == [True]
    model.input_gradient = build_input_gradient('finite_difference')
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        estimate = training_gradients(model, clean, masked(clean))
    assert math_only[1:] == [False, False]  # the first and the perturbed pass
    assert relative_error(exact, estimate) <= 1e-2


class SmoothBatchNormEnergy(nn.Module):
    """conv -> train-mode BatchNorm -> GELU -> mean pool -> linear: a smooth energy [B]."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.gelu(self.bn(self.conv(x))).mean((2, 3))).squeeze(-1)


def test_any_energy_module_and_batchnorm_statistics_updated_once():
    """float64: this checks the generic path and BatchNorm, not float32 precision."""
    torch.manual_seed(0)
    energy = SmoothBatchNormEnergy().double()
    clean = real_photo_batch(count=4).double()
    x0 = masked(clean)
    alpha = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    results = {}
    for mode in ('exact', 'finite_difference'):
        energy.bn.reset_running_stats()
        energy.zero_grad()
        x = x0.clone().requires_grad_(True)
        _, grad = build_input_gradient(mode)(energy, x, create_graph=True)
        F.smooth_l1_loss(x - alpha * grad, clean).backward()
        results[mode] = (
            {n: p.grad.clone() for n, p in energy.named_parameters()},
            energy.bn.running_mean.clone(),
            int(energy.bn.num_batches_tracked),
        )
    (exact, mean_exact, count_exact), (estimate, mean_fd, count_fd) = results.values()
    assert relative_error(exact, estimate) <= 1e-3
    # the perturbed pass normalizes with batch statistics but does not update them
    assert count_fd == count_exact == 1
    torch.testing.assert_close(mean_fd, mean_exact)


def test_piecewise_linear_energy_is_refused():
    with pytest.raises(ValueError, match=r"finite_difference.*ReLU.*grad_mode='exact'"):
        build_model('resnet', grad_mode='finite_difference')


def test_energy_without_a_module_is_refused():
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(TypeError, match='nn.Module or a bound method'):
        build_input_gradient('finite_difference')(
            lambda t: t.flatten(1).pow(2).sum(1), x.requires_grad_(True), create_graph=True
        )


def test_inference_needs_no_second_order_path():
    torch.manual_seed(0)
    model = build_model('vit', num_steps=2, grad_mode='finite_difference').eval()
    clean = real_photo_batch(count=2)
    with torch.no_grad():
        chain = model.restore(masked(clean))
    model.input_gradient = build_input_gradient('exact')
    with torch.no_grad():
        reference = model.restore(masked(clean))
    for restored, expected in zip(chain, reference):
        torch.testing.assert_close(restored, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(
    not hasattr(torch.backends.cuda.matmul, 'fp32_precision'), reason='torch < 2.9 flags'
)
def test_full_precision_restores_tf32_set_through_the_new_flags():
    """With TF32 set through torch >= 2.9's fp32_precision flags, reading the legacy
    allow_tf32 raises; the float32 passes switch TF32 off and restore it either way."""
    from mmpretrain_ebm.models.utils.finite_difference import full_precision

    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    before = matmul.fp32_precision, conv.fp32_precision
    try:
        matmul.fp32_precision = conv.fp32_precision = 'tf32'
        with full_precision('cuda'):
            assert (matmul.fp32_precision, conv.fp32_precision) == ('ieee', 'ieee')
        assert (matmul.fp32_precision, conv.fp32_precision) == ('tf32', 'tf32')
    finally:
        matmul.fp32_precision, conv.fp32_precision = before
