"""The training gradient equals an independent float64 computation (the paper's Eq. 4).

The independent side never calls the algorithm's step: it evaluates the restoration loss with
first-order input gradients only and differentiates it by central finite differences. For
N = 2 the stop gradient makes the training gradient the derivative of the *frozen-start* loss
(each step starts from its computed, fixed value), not of the whole loss.
"""

from typing import Callable, Dict, List

import pytest
import torch
import torch.nn.functional as F
from ebm_testing import build_model, grid_mask, real_photo_batch

EPS = 1e-6


def input_gradient(model, x: torch.Tensor) -> torch.Tensor:
    """dE/dx by a first-order autograd call (no graph kept)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(model.head(model.backbone(x)).sum(), x)
    return grad


def frozen_start_loss(model, clean, starts: List[torch.Tensor]) -> float:
    """Mean over steps of SmoothL1(start_n - alpha * dE/dx(start_n), clean), starts fixed."""
    alpha = model.alpha.detach()
    losses = [
        F.smooth_l1_loss(s - alpha * input_gradient(model, s), clean, beta=1.0) for s in starts
    ]
    return float(sum(losses) / len(losses))


def chained_loss(model, clean, corrupted, num_steps: int) -> float:
    """The whole loss as a function of theta: each step starts from the previous result."""
    alpha, x, total = model.alpha.detach(), corrupted, 0.0
    for _ in range(num_steps):
        x = x - alpha * input_gradient(model, x)
        total += float(F.smooth_l1_loss(x, clean, beta=1.0))
    return total / num_steps


def finite_difference(loss_fn: Callable[[], float], tensor: torch.Tensor, index) -> float:
    """Central difference of ``loss_fn`` in ``tensor[index]`` (restored afterwards)."""
    with torch.no_grad():
        original = tensor[index].item()
        tensor[index] = original + EPS
        plus = loss_fn()
        tensor[index] = original - EPS
        minus = loss_fn()
        tensor[index] = original
    return (plus - minus) / (2 * EPS)


def probe_points(model, clean, corrupted) -> Dict[str, tuple]:
    """Where to probe: the largest-gradient entry of the first backbone weight, a middle one,
    a norm weight and the head, plus alpha (chosen from a correct run, before any patch)."""
    grads = training_gradients(model, clean, corrupted)
    weights = [n for n in grads if n.startswith('backbone.') and n.endswith('weight')]
    norm = next(n for n in weights if 'ln' in n or 'norm' in n)
    points = {'alpha': ()}
    for name in (weights[0], weights[len(weights) // 2], norm, 'head.fc.weight'):
        flat = int(grads[name].abs().argmax())
        points[name] = tuple(
            int(i) for i in torch.unravel_index(torch.tensor(flat), grads[name].shape)
        )
    return points


def training_gradients(model, clean, corrupted) -> Dict[str, torch.Tensor]:
    model.zero_grad()
    losses = model.loss([clean, corrupted])
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    return {name: param.grad for name, param in model.named_parameters()}


def make_problem(backbone: str, num_steps: int):
    torch.manual_seed(0)
    model = build_model(backbone, num_steps=num_steps, log_clean_energy=False).double()
    clean = real_photo_batch(count=2).double()
    corrupted = grid_mask(clean, generator=torch.Generator().manual_seed(1))
    # a step size that moves pixels by about 0.5 on average: the energy term matters and the
    # loss stays O(1), so finite differences keep their precision
    with torch.no_grad():
        model.alpha.fill_(0.5 / input_gradient(model, corrupted).abs().mean().item())
    return model, clean, corrupted


def compare_with_finite_differences(
    model, clean, corrupted, loss_fn, points: Dict[str, tuple]
) -> Dict[str, tuple]:
    """{name: (training gradient, finite difference)} at the probe points."""
    grads = training_gradients(model, clean, corrupted)
    params = dict(model.named_parameters())
    result = {}
    for name, index in points.items():
        analytic = grads[name][index].item() if grads[name] is not None else 0.0
        result[name] = (analytic, finite_difference(loss_fn, params[name].data, index))
    return result


def assert_all_close(pairs: Dict[str, tuple]) -> None:
    for name, (analytic, numeric) in pairs.items():
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-9), name


@pytest.mark.parametrize('backbone', ['vit', 'convnext'])
def test_single_step_gradient_equals_finite_differences(backbone):
    model, clean, corrupted = make_problem(backbone, num_steps=1)
    pairs = compare_with_finite_differences(
        model,
        clean,
        corrupted,
        lambda: chained_loss(model, clean, corrupted, 1),
        probe_points(model, clean, corrupted),
    )
    assert all(abs(numeric) > 1e-7 for _, numeric in pairs.values()), pairs
    assert_all_close(pairs)


@pytest.mark.parametrize('backbone', ['vit', 'convnext'])
def test_two_step_gradient_equals_frozen_start_finite_differences(backbone):
    model, clean, corrupted = make_problem(backbone, num_steps=2)
    x1 = corrupted - model.alpha.detach() * input_gradient(model, corrupted)
    points = probe_points(model, clean, corrupted)
    frozen = compare_with_finite_differences(
        model, clean, corrupted, lambda: frozen_start_loss(model, clean, [corrupted, x1]), points
    )
    assert_all_close(frozen)
    # The stop gradient is real: the derivative of the whole chained loss is different.
    name = 'head.fc.weight'
    chained = finite_difference(
        lambda: chained_loss(model, clean, corrupted, 2),
        dict(model.named_parameters())[name].data,
        points[name],
    )
    assert abs(chained - frozen[name][0]) > 0.05 * abs(chained), (chained, frozen[name])


def test_check_fails_when_create_graph_is_dropped(monkeypatch):
    """The same comparison must catch a step that skips the second-order path."""
    model, clean, corrupted = make_problem('vit', num_steps=1)
    points = probe_points(model, clean, corrupted)
    real_grad = torch.autograd.grad

    def first_order_only(outputs, inputs, create_graph=False, **kwargs):
        return real_grad(outputs, inputs, create_graph=False, **kwargs)

    monkeypatch.setattr(torch.autograd, 'grad', first_order_only)
    pairs = compare_with_finite_differences(
        model, clean, corrupted, lambda: chained_loss(model, clean, corrupted, 1), points
    )
    with pytest.raises(AssertionError):
        assert_all_close(pairs)
    # only alpha still learns; every network parameter lost its gradient
    assert pairs['alpha'][0] == pytest.approx(pairs['alpha'][1], rel=1e-5)
    assert pairs['head.fc.weight'][0] == 0.0
