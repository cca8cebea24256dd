"""Input-gradient estimators as components: built from grad_mode, one class for a new one."""

import pytest
import torch
from ebm_testing import build_model, grid_mask
from mmpretrain.registry import MODELS

from mmpretrain_ebm.models.utils import (
    ExactInputGradient,
    FiniteDifferenceInputGradient,
    InputGradient,
    build_input_gradient,
    exact_input_gradient,
)


def test_grad_mode_names_and_configs_build_the_estimators():
    exact = build_input_gradient('exact', recompute_elementwise=False, energy_scaler=None)
    assert isinstance(exact, ExactInputGradient) and not exact.recompute_elementwise
    assert exact.scaler.scale == 2.0**8
    fd = build_input_gradient(dict(type='FiniteDifferenceInputGradient', rel_eps=3e-4))
    assert isinstance(fd, FiniteDifferenceInputGradient) and fd.rel_eps == 3e-4
    assert fd.scaler is None


@pytest.mark.parametrize(
    'grad_mode, error, message',
    [
        (
            'double',
            ValueError,
            r"grad_mode must be one of \('exact', 'finite_difference', 'compiled'\)",
        ),
        (dict(type='SmoothL1Loss'), TypeError, 'built SmoothL1Loss, which is not an InputGradient'),
        (dict(type='FiniteDifferenceInputGradient', rel_eps=0), ValueError, 'rel_eps .* got 0'),
        (dict(type='ExactInputGradient', recompute_elementwise=1), TypeError, 'True or False'),
        (dict(type='ExactInputGradient', energy_scaler=2.0), TypeError, 'energy_scaler must'),
    ],
)
def test_bad_estimators_are_named(grad_mode, error, message):
    with pytest.raises(error, match=message):
        build_input_gradient(grad_mode)


def test_exact_estimator_is_the_autograd_input_gradient(photos):
    """Against a plain first-order autograd call, with and without the second-order graph
    (which runs on the math attention backend: equal up to float32 rounding)."""
    model = build_model('vit')
    x = grid_mask(photos[:2]).requires_grad_(True)
    (expected,) = torch.autograd.grad(model.energy(x).sum(), x)
    for create_graph in (False, True):
        energy, grad = model.input_gradient(model.energy, x, create_graph)
        assert grad.requires_grad == create_graph
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-4 * expected.abs().max())
        torch.testing.assert_close(energy, model.energy(x))


@MODELS.register_module()
class HalvedExactInputGradient(InputGradient):
    """A new estimator is one class: here half the exact gradient (testing only)."""

    def __call__(self, energy_fn, x, create_graph):
        energy, grad = exact_input_gradient(energy_fn, x, create_graph)
        return energy, grad / 2


def test_a_registered_estimator_is_chosen_from_the_config(photos):
    """A halved gradient with alpha 2 takes exactly the step of the exact one with alpha 1
    (halving and doubling by powers of two are exact in floating point)."""
    custom = build_model('vit', alpha=2.0, grad_mode=dict(type='HalvedExactInputGradient'))
    exact = build_model('vit', alpha=1.0)
    exact.load_state_dict({**custom.state_dict(), 'alpha': torch.tensor(1.0)})
    corrupted = grid_mask(photos[:2])
    for ours, reference in zip(custom.restore(corrupted), exact.restore(corrupted)):
        torch.testing.assert_close(ours, reference, rtol=0, atol=0)
    assert custom.fp16_scalers().keys() == {'step_loss'}
