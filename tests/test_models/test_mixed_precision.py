"""fp16: the energy is scaled before the inner gradient and the gradient unscaled after it."""

import pytest
import torch
from ebm_testing import build_model, grid_mask, real_photo_batch

from mmpretrain_ebm.models.utils import (
    EnergyGradScaler,
    exact_input_gradient,
    fp16_autocast_active,
)
from mmpretrain_ebm.models.utils import finite_difference as fd_module


def test_scaler_backs_off_grows_and_stays_in_range():
    scaler = EnergyGradScaler(init_scale=8.0, growth_interval=2, min_scale=1.0, max_scale=16.0)
    scaler.update(found_inf=True)
    assert scaler.scale == 4.0
    scaler.update(found_inf=False)
    assert scaler.scale == 4.0
    scaler.update(found_inf=False)
    assert scaler.scale == 8.0  # grown after 2 clean steps
    scaler.update(found_inf=False)
    scaler.update(found_inf=True)  # an overflow resets the count
    scaler.update(found_inf=False)
    assert scaler.scale == 4.0
    for _ in range(10):
        scaler.update(found_inf=False)
    assert scaler.scale == 16.0  # capped
    for _ in range(10):
        scaler.update(found_inf=True)
    assert scaler.scale == 1.0 and not scaler.can_back_off


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(init_scale=0.5), 'min_scale <= init_scale'),
        (dict(growth_factor=1.0), 'growth_factor > 1'),
        (dict(backoff_factor=1.0), 'backoff_factor < 1'),
        (dict(growth_interval=0), 'growth_interval must be >= 1'),
        (dict(init_scale=0.0, min_scale=0.0), r'init_scale > 0 and min_scale > 0.*init_scale=0\.0'),
        (dict(init_scale=-4.0, min_scale=-8.0, max_scale=-1.0), r'min_scale=-8\.0'),
    ],
)
def test_scaler_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EnergyGradScaler(**kwargs)


def test_scaler_state_round_trip_is_clipped_to_the_range():
    source = EnergyGradScaler(init_scale=64.0, max_scale=64.0)
    source.update(found_inf=True)
    target = EnergyGradScaler(init_scale=8.0, max_scale=16.0)
    target.load_state_dict(source.state_dict())
    assert target.state_dict() == {'scale': 16.0, 'good_steps': 0}  # 32 clipped to max


def tiny_energy():
    """E(x) = w2 . tanh(W1 x): dE/dx = W1^T (w2 * tanh') is about 1.6e-8 per pixel, below
    half of fp16's smallest subnormal (6e-8), while both weights are representable."""
    w1 = torch.full((16, 48), 1e-4)
    w2 = torch.full((16,), 1e-5)
    return lambda x: (torch.tanh(x.flatten(1) @ w1.T) @ w2).float()


def test_scaled_inner_gradient_survives_fp16_underflow():
    energy_fn, x = tiny_energy(), torch.randn(2, 3, 4, 4, requires_grad=True)
    reference = exact_input_gradient(energy_fn, x, create_graph=True)[1]
    assert reference.abs().min() > 1e-9
    with torch.autocast('cpu', dtype=torch.float16):
        assert fp16_autocast_active('cpu')
        unscaled = exact_input_gradient(energy_fn, x, create_graph=True)[1]
        scaled = exact_input_gradient(energy_fn, x, True, energy_scale=2.0**12)[1]
    assert unscaled.abs().max() == 0  # underflow: without scaling the step is lost
    assert scaled.dtype == torch.float32
    torch.testing.assert_close(scaled, reference, rtol=2e-2, atol=0)


def fp16_gradients(model, clean, corrupted, outer_scale: float = 2.0**16):
    """One loss under CPU fp16 autocast, backward with a static outer loss scale as
    ``AmpOptimWrapper``'s GradScaler applies it; returns (losses, unscaled head gradient)."""
    model.zero_grad()
    with torch.autocast('cpu', dtype=torch.float16):
        losses = model.loss([clean, corrupted])
    (outer_scale * sum(v for k, v in losses.items() if 'loss' in k)).backward()
    return losses, model.head.fc.weight.grad / outer_scale


def test_fp16_training_step_matches_fp32(photos):
    torch.manual_seed(0)
    model = build_model('vit', num_steps=2, log_clean_energy=False)
    clean, corrupted = photos[:4], grid_mask(photos[:4])
    reference = model.loss([clean, corrupted])
    sum(v for k, v in reference.items() if 'loss' in k).backward()
    reference_grad = model.head.fc.weight.grad.clone()
    losses, grad = fp16_gradients(model, clean, corrupted)
    assert model.input_gradient.scaler.scale == 2.0**8
    for key in ('loss_step1', 'loss_step2'):
        torch.testing.assert_close(losses[key], reference[key], rtol=2e-2, atol=1e-4)
    assert torch.nn.functional.cosine_similarity(grad, reference_grad).item() > 0.99


def test_fp16_overflow_backs_off_and_recomputes_the_step(photos):
    torch.manual_seed(0)
    model = build_model(
        'vit',
        num_steps=2,
        log_clean_energy=False,
        energy_scaler=dict(init_scale=2.0**20, max_scale=2.0**20),
    )
    clean, corrupted = photos[:4], grid_mask(photos[:4])
    reference = model.loss([clean, corrupted])
    losses, grad = fp16_gradients(model, clean, corrupted)
    # 2**20 overflows fp16 on its way into the network: the step was recomputed at smaller
    # scales until its gradient was finite
    assert model.input_gradient.scaler.scale <= 2.0**15
    for key in ('loss_step1', 'loss_step2'):
        torch.testing.assert_close(losses[key], reference[key], rtol=2e-2, atol=1e-4)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_fp16_non_finite_energy_is_reported_not_retried(photos):
    model = build_model('vit', num_steps=1)
    with torch.no_grad():
        model.head.fc.weight[0, 0] = float('inf')
    scale = model.input_gradient.scaler.scale
    with (
        torch.autocast('cpu', dtype=torch.float16),
        pytest.raises(FloatingPointError, match=r'energy at restoration step 1.*fp16'),
    ):
        model.loss([photos[:2], grid_mask(photos[:2])])
    assert model.input_gradient.scaler.scale == scale


def backbone_forward_counter(model):
    calls = []
    model.backbone.register_forward_hook(lambda *_: calls.append(1))
    return calls


@pytest.mark.parametrize('grad_checkpoint', [False, True], ids=['plain', 'checkpoint'])
def test_fp16_retries_leave_batchnorm_statistics_to_the_first_pass(grad_checkpoint, photos):
    clean, corrupted = photos[:4], grid_mask(photos[:4], generator=torch.Generator().manual_seed(0))
    runs = {}
    for init_scale in (2.0**8, 2.0**20):  # 2**20 overflows and is retried at smaller scales
        torch.manual_seed(0)
        model = build_model(
            'resnet',
            num_steps=2,
            log_clean_energy=False,
            grad_checkpoint=grad_checkpoint,
            energy_scaler=dict(init_scale=init_scale, max_scale=init_scale),
        )
        calls = backbone_forward_counter(model)
        fp16_gradients(model, clean, corrupted)
        runs[init_scale] = model, len(calls)
    (plain, plain_calls), (retried, retried_calls) = runs.values()
    assert plain_calls == 2 and retried_calls > 4
    buffers = dict(retried.named_buffers())
    assert int(buffers['backbone.bn1.num_batches_tracked']) == 2
    for name, buffer in plain.named_buffers():
        torch.testing.assert_close(buffers[name], buffer, rtol=0, atol=0, msg=name)
    assert all(
        bn.momentum == 0.1 for bn in retried.modules() if isinstance(bn, torch.nn.BatchNorm2d)
    )


def test_fp16_finite_difference_is_not_retried(photos, monkeypatch):
    """Its passes run in float32 and ignore the energy scale: a non-finite gradient is real
    and is reported at once, without a scale it does not use."""
    estimate, calls = fd_module.finite_difference_input_gradient, []

    def non_finite(*args, **kwargs):
        calls.append(1)
        energy, grad = estimate(*args, **kwargs)
        return energy, grad * float('inf')

    monkeypatch.setattr(fd_module, 'finite_difference_input_gradient', non_finite)
    model = build_model('vit', num_steps=2, grad_mode='finite_difference')
    assert model.fp16_scalers().keys() == {'step_loss'}  # no energy scale to retry with
    message = r'input gradient dE/dx at restoration step 1 of 2; '
    with (
        torch.autocast('cpu', dtype=torch.float16),
        pytest.raises(FloatingPointError, match=message) as error,
    ):
        model.loss([photos[:2], grid_mask(photos[:2])])
    assert 'fp16' not in str(error.value)
    assert len(calls) == 2  # one pass per step


def _overflow_on_rank_zero(rank: int, rendezvous: str, results: str) -> None:
    """Rank 0's energy scale overflows, rank 1's does not; both record their passes."""
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        'gloo', init_method=f'file://{rendezvous}', rank=rank, world_size=2
    )
    try:
        torch.manual_seed(0)
        init_scale = 2.0**20 if rank == 0 else 2.0**8
        model = build_model(
            'vit',
            num_steps=1,
            log_clean_energy=False,
            energy_scaler=dict(init_scale=init_scale, max_scale=2.0**20),
        )
        calls = backbone_forward_counter(model)
        photos = real_photo_batch(2)
        with torch.autocast('cpu', dtype=torch.float16):
            model.loss([photos, grid_mask(photos)])
        torch.save(
            dict(calls=len(calls), scale=model.input_gradient.scaler.scale), f'{results}.{rank}'
        )
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.timeout(300)
def test_fp16_retry_is_decided_by_all_ranks(tmp_path):
    """A retry re-runs forwards (SyncBN collectives among them): a rank may not retry alone."""
    results = str(tmp_path / 'result')
    torch.multiprocessing.spawn(
        _overflow_on_rank_zero, nprocs=2, args=(str(tmp_path / 'rendezvous'), results)
    )
    rank0, rank1 = (torch.load(f'{results}.{rank}') for rank in range(2))
    assert rank0['calls'] == rank1['calls'] > 1
    backoffs = rank0['calls'] - 1
    assert rank0['scale'] == 2.0 ** (20 - backoffs) and rank1['scale'] == 2.0 ** (8 - backoffs)
