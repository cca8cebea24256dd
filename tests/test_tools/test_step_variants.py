"""The plain-PyTorch loops that ``benchmark_step.py`` times against ours compute the method's
gradients: Listing 1 exactly, and its finite-difference form within the estimator's error."""

import importlib
import sys
from pathlib import Path

import pytest
import torch
from mmpretrain.registry import MODELS

import mmpretrain_ebm  # noqa: F401  (registers EnergyHead)

TOOLS = Path(__file__).parents[2] / 'tools' / 'analysis'


@pytest.fixture(scope='module')
def step_variants():
    sys.path.insert(0, str(TOOLS))
    try:
        yield importlib.import_module('step_variants')
    finally:
        sys.path.remove(str(TOOLS))


def gradients_of(method, num_steps: int, drop_path_rate: float = 0.0) -> dict:
    """``.grad`` of a tiny ViT energy, its head and alpha after ``method`` on fixed data."""
    torch.manual_seed(0)
    backbone = MODELS.build(
        dict(
            type='VisionTransformer',
            img_size=32,
            patch_size=8,
            arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64),
            drop_path_rate=drop_path_rate,
            out_type='avg_featmap',
            final_norm=False,
        )
    )
    head = MODELS.build(dict(type='EnergyHead', in_channels=32))
    backbone.train()
    alpha = torch.nn.Parameter(torch.tensor(30.0))
    images = torch.randn(3, 3, 32, 32)
    start = images.clone()
    start[..., 8:24, 8:24] = 0  # a masked square
    method(backbone, head, alpha, start, images, num_steps)
    named = [*backbone.named_parameters(), *head.named_parameters(), ('alpha', alpha)]
    return {name: param.grad for name, param in named if param.grad is not None}


@pytest.mark.parametrize('num_steps, drop_path_rate', [(1, 0.0), (2, 0.0), (2, 0.5)])
def test_finite_difference_loop_estimates_listing1(step_variants, num_steps, drop_path_rate):
    """With drop path both loops draw the same paths (same seed, and the perturbed pass
    replays the first pass's random state)."""
    exact = gradients_of(step_variants.listing1_gradients, num_steps, drop_path_rate)
    estimate = gradients_of(step_variants.finite_difference_gradients, num_steps, drop_path_rate)
    # the bias of the LayerNorm after pooling only shifts E by a constant: Listing 1 leaves
    # it without a gradient, the estimate gives it zeros
    assert set(estimate) - set(exact) == {'ln2.bias'}
    assert estimate['ln2.bias'].abs().max() == 0
    flat = lambda grads: torch.cat([grads[name].flatten() for name in exact])  # noqa: E731
    assert flat(exact).norm() > 0
    error = (flat(estimate) - flat(exact)).norm() / flat(exact).norm()
    assert error < 2e-2, error
    torch.testing.assert_close(estimate['alpha'], exact['alpha'], rtol=1e-4, atol=0)


@pytest.mark.timeout(900)
@pytest.mark.parametrize('num_steps', [1, 2])
def test_whole_step_compiled_loop_equals_listing1(step_variants, num_steps):
    exact = gradients_of(step_variants.listing1_gradients, num_steps)
    compiled = gradients_of(step_variants.whole_step_compiled_gradients, num_steps)
    assert set(compiled) - set(exact) == {'ln2.bias'} and not compiled['ln2.bias'].any()
    for name, grad in exact.items():
        torch.testing.assert_close(compiled[name], grad, rtol=1e-4, atol=1e-6, msg=name)
