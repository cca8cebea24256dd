"""Training on a small batch of real photographs restores them; alpha learns too."""

import pytest
import torch
import torch.nn.functional as F
from ebm_testing import build_model, grid_mask, real_photo_batch

ITERATIONS = 50


def train(num_steps: int, autocast_dtype=None, iterations: int = ITERATIONS):
    """AdamW on 8 real 32-px crops with fresh grid masks; returns (model, losses, baseline)."""
    torch.manual_seed(0)
    model = build_model('vit', num_steps=num_steps, alpha=1.0, log_clean_energy=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.0)
    clean = real_photo_batch(8)
    generator = torch.Generator().manual_seed(0)
    history, baseline = [], []
    alpha_grads = []
    for _ in range(iterations):
        corrupted = grid_mask(clean, generator=generator)
        with torch.autocast(
            'cpu', dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None
        ):
            losses = model.loss([clean, corrupted])
        loss = sum(value for key, value in losses.items() if 'loss' in key)
        optimizer.zero_grad()
        loss.backward()
        alpha_grads.append(model.alpha.grad.item())
        optimizer.step()
        history.append(loss.item())
        baseline.append(F.smooth_l1_loss(corrupted, clean).item())
    return model, history, baseline, alpha_grads


def restored_to_corrupted(history, baseline, last: int = 5) -> float:
    """Restoration loss over the last iterations relative to that of the corrupted inputs."""
    return sum(history[-last:]) / sum(baseline[-last:])


@pytest.mark.parametrize('num_steps', [1, 2])
def test_loss_falls_and_restoration_beats_the_corrupted_input(num_steps):
    model, history, baseline, alpha_grads = train(num_steps)
    first, last = sum(history[:5]) / 5, sum(history[-5:]) / 5
    assert last < 0.75 * first, history
    # the restored images are closer to the clean ones than the corrupted inputs were
    assert restored_to_corrupted(history, baseline) < 0.8, (history, baseline)
    # alpha receives a gradient and moves
    assert all(g != 0.0 for g in alpha_grads)
    assert abs(model.alpha.item() - 1.0) > 1e-3


def test_without_second_order_path_nothing_but_alpha_learns(monkeypatch):
    """Contrast: a first-order step (create_graph dropped) cannot learn to restore."""
    real_grad = torch.autograd.grad
    monkeypatch.setattr(
        torch.autograd,
        'grad',
        lambda outputs, inputs, create_graph=False, **kw: real_grad(
            outputs, inputs, create_graph=False, **kw
        ),
    )
    _, history, baseline, _ = train(num_steps=1)
    assert restored_to_corrupted(history, baseline) > 0.97, (history, baseline)


def test_bf16_autocast_on_cpu_trains():
    model, history, baseline, _ = train(num_steps=2, autocast_dtype=torch.bfloat16)
    assert all(torch.isfinite(torch.tensor(history)))
    assert sum(history[-5:]) / 5 < 0.75 * sum(history[:5]) / 5, history
    assert restored_to_corrupted(history, baseline) < 0.8
    assert (
        model.input_gradient.scaler.scale == model.input_gradient.scaler.__class__().scale
    )  # bf16: unscaled
