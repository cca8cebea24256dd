"""Mixed precision on the device: bf16 and fp16 autocast around the double backward give the
fp32 backbone gradients (not only the head's), through the GradScaler as AmpOptimWrapper
runs it, also under DDP (NCCL on CUDA; the fp16 path's cross-rank decisions are collectives)."""

import pytest
import torch
from device_testing import (
    GradientRecorder,
    calibrate_alpha,
    gradients,
    ieee_float32,
    problem,
    random_conv_biases,
    relative_error,
)
from ebm_testing import MEAN, STD
from mmengine.optim import OptimWrapper
from mmpretrain.structures import DataSample

#: Tolerated relative error of all backbone gradients against fp32 (one N = 2 step of a tiny
#: model at initialization, 4 photos of 32 px, half of the 8-px cells masked). Measured on CPU
#: autocast: bf16 9e-3 (ViT), 7e-3 (Swin), 6e-3 (ConvNeXt); fp16 2e-3, 0.22, 1e-3.
TOLERANCE = {torch.bfloat16: 3e-2, torch.float16: 1e-2}
DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


@pytest.mark.parametrize('backbone', ['vit', 'swin', 'convnext'])
@pytest.mark.parametrize('dtype', DTYPES.values(), ids=DTYPES.keys())
def test_amp_gradients_match_fp32(device, backbone, dtype, request, record_property):
    if device.type == 'cpu' and backbone == 'swin' and dtype == torch.float16:
        request.applymarker(
            pytest.mark.xfail(
                reason='CPU fp16 autocast: Swin backbone gradients 0.22 off (its restoration '
                'step is 1e-3 off; the loss scale does not change it); CUDA decides',
                strict=False,
            )
        )
    model, clean, corrupted = problem(backbone, device, num_steps=2)
    random_conv_biases(model)
    calibrate_alpha(model, corrupted)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with ieee_float32():
        reference = gradients(model, clean, corrupted)
    model.load_state_dict(state)
    estimate = gradients(model, clean, corrupted, dtype=dtype)
    assert all(torch.isfinite(g).all() for g in estimate.values())
    error = relative_error(estimate, reference, prefix='backbone.')
    record_property('relative_error', error)
    assert error < TOLERANCE[dtype], error
    assert relative_error(estimate, reference, prefix='head.') < TOLERANCE[dtype]


def data_batch(clean: torch.Tensor, corrupted: torch.Tensor) -> dict:
    """The batch as the dataloader delivers it: BGR uint8 views [clean, corrupted]."""
    mean, std = MEAN.to(clean.device), STD.to(clean.device)
    to_uint8 = lambda x: (x * std + mean).round().clamp(0, 255)[:, [2, 1, 0]].to(torch.uint8)  # noqa
    samples = [DataSample() for _ in range(len(clean))]
    return dict(inputs=[to_uint8(clean), to_uint8(corrupted)], data_samples=samples)


def wrapper_gradients(model, data: dict, dtype=None, ddp: bool = False) -> dict:
    """The gradients that ``model.train_step`` hands the optimizer through mmengine's
    ``AmpOptimWrapper(dtype=...)`` (``OptimWrapper`` when ``dtype`` is None)."""
    from mmengine.optim import AmpOptimWrapper

    named = list(model.named_parameters())
    if ddp:
        from mmengine.model import MMDistributedDataParallel

        device_ids = [model.alpha.device.index] if model.alpha.is_cuda else None
        model = MMDistributedDataParallel(module=model, device_ids=device_ids)
    recorder = GradientRecorder(named)
    if dtype is None:
        wrapper = OptimWrapper(optimizer=recorder)
    else:
        wrapper = AmpOptimWrapper(optimizer=recorder, dtype=dtype, loss_scale='dynamic')
    torch.manual_seed(5)
    model.train_step(data, wrapper)
    return recorder.recorded


@pytest.mark.parametrize('dtype', ['bfloat16', 'float16'])
def test_amp_optim_wrapper_train_step_matches_fp32(device, dtype):
    if device.type != 'cuda':
        pytest.skip("mmengine's AmpOptimWrapper runs on CUDA only (it refuses the CPU)")
    model, clean, corrupted = problem('vit', device, num_steps=2)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    data = data_batch(clean, corrupted)
    with ieee_float32():
        reference = wrapper_gradients(model, data)
    model.load_state_dict(state)
    estimate = wrapper_gradients(model, data, dtype=dtype)
    tolerance = TOLERANCE[getattr(torch, dtype)]
    assert relative_error(estimate, reference, prefix='backbone.') < tolerance


@pytest.fixture
def process_group(device, tmp_path):
    """A one-process group: NCCL on CUDA, gloo on the CPU."""
    import torch.distributed as dist

    backend = 'nccl' if device.type == 'cuda' else 'gloo'
    dist.init_process_group(
        backend, init_method=f'file://{tmp_path / "rendezvous"}', rank=0, world_size=1
    )
    try:
        yield backend
    finally:
        dist.destroy_process_group()


def test_ddp_train_step_matches_one_process(device, process_group):
    """One rank under DDP: fp16 AmpOptimWrapper on CUDA (its overflow checks are all-reduced
    over NCCL), fp32 OptimWrapper on the CPU; the same gradients as without DDP."""
    dtype = 'float16' if device.type == 'cuda' else None
    model, clean, corrupted = problem('vit', device, num_steps=2)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    data = data_batch(clean, corrupted)
    alone = wrapper_gradients(model, data, dtype=dtype)
    model.load_state_dict(state)
    distributed = wrapper_gradients(model, data, dtype=dtype, ddp=True)
    assert set(distributed) >= {n for n in alone if n.startswith('backbone.')}
    assert relative_error(distributed, alone, prefix='backbone.') < 1e-5
