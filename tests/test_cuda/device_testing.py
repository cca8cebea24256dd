"""Helpers of the device tests: models on a device, AMP gradients, relative errors."""

import copy
from contextlib import contextmanager
from typing import Dict, Iterator, Optional

import pytest
import torch
from ebm_testing import MEAN, STD, TINY_BACKBONES, build_model, grid_mask, real_photo_batch
from mmpretrain.registry import MODELS
from test_gradients import input_gradient

Gradients = Dict[str, torch.Tensor]


def loss_total(losses: dict) -> torch.Tensor:
    return sum(v for k, v in losses.items() if 'loss' in k)


def photo_batch(device: torch.device, count: int = 4):
    """Normalized real photos [count, 3, 32, 32] and their grid-masked copies."""
    clean = real_photo_batch(count=count)
    corrupted = grid_mask(clean, generator=torch.Generator().manual_seed(1))
    return clean.to(device), corrupted.to(device)


def problem(backbone: str, device: torch.device, count: int = 4, **kwargs):
    """A tiny model on ``device`` (seeded) and :func:`photo_batch`."""
    torch.manual_seed(0)
    model = build_model(backbone, log_clean_energy=False, **kwargs).to(device)
    return (model, *photo_batch(device, count))


def build_from_registry(backbone: str, device: torch.device, backbone_kwargs: dict, **kwargs):
    """As ``build_model``, through the registry, with extra backbone settings."""
    backbone_cfg, width = TINY_BACKBONES[backbone]
    cfg = dict(
        type='EnergyRestorationAlgorithm',
        backbone=dict(copy.deepcopy(backbone_cfg), **backbone_kwargs),
        head=dict(type='EnergyHead', in_channels=width),
        log_clean_energy=False,
        data_preprocessor=dict(
            type='SelfSupDataPreprocessor',
            mean=MEAN.flatten().tolist(),
            std=STD.flatten().tolist(),
            to_rgb=True,
        ),
        **kwargs,
    )
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model.to(device)


def random_conv_biases(model, seed: int = 1) -> None:
    """PyTorch's default init for every convolution (as configs/_base_/models/
    ebm_convnext-tiny.py does): with mmpretrain's zero biases a fully masked patch enters a
    LayerNorm as a constant vector, a singularity whose second-order terms overflow fp16."""
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.reset_parameters()


def calibrate_alpha(model, corrupted: torch.Tensor, move: float = 0.5) -> None:
    """Set the step size so that the first step moves pixels by ``move`` on average (a tiny
    ConvNeXt's input gradient is ~1e2 at initialization: alpha = 1 would overflow fp16)."""
    grad = input_gradient(model, corrupted)
    with torch.no_grad():
        model.alpha.fill_(move / grad.abs().mean().item())


def gradients(
    model, clean, corrupted, dtype: Optional[torch.dtype] = None, seed: int = 5
) -> Gradients:
    """Parameter gradients of one loss. With ``dtype``: under autocast, backward with a loss
    scale as ``AmpOptimWrapper``'s dynamic GradScaler applies it (2**16 at first, halved
    while the gradients are not finite), unscaled."""
    device = clean.device.type
    scale = 2.0**16 if dtype is not None else 1.0
    while True:
        torch.manual_seed(seed)  # dropout and drop path
        model.zero_grad()
        with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
            losses = model.loss([clean, corrupted])
        (scale * loss_total(losses)).backward()
        grads = {n: p.grad / scale for n, p in model.named_parameters() if p.grad is not None}
        if all(torch.isfinite(g).all() for g in grads.values()) or scale <= 1.0:
            return grads
        scale /= 2


def relative_error(estimate: Gradients, reference: Gradients, prefix: str = '') -> float:
    """||g - g_ref|| / ||g_ref|| over the parameters named ``prefix*`` of ``reference``."""
    names = [n for n in reference if n.startswith(prefix)]
    assert names and set(names) <= set(estimate), sorted(set(names) - set(estimate))
    ref = torch.cat([reference[n].double().flatten() for n in names])
    diff = torch.cat([(estimate[n].double() - reference[n].double()).flatten() for n in names])
    assert ref.norm() > 0, 'reference gradient is zero'
    return (diff.norm() / ref.norm()).item()


class GradientRecorder(torch.optim.Optimizer):
    """An optimizer whose step keeps a copy of every gradient and changes nothing: what an
    optim wrapper hands the optimizer (after ``AmpOptimWrapper`` unscaled it)."""

    def __init__(self, named_parameters) -> None:
        named = list(named_parameters)
        self.names = {id(p): n for n, p in named}
        super().__init__([p for _, p in named], dict(lr=0.0))
        self.recorded: Gradients = {}

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group['params']:
                if p.grad is not None:
                    self.recorded[self.names[id(p)]] = p.grad.detach().clone()


@contextmanager
def ieee_float32() -> Iterator[None]:
    """No TF32 in CUDA matmuls and convolutions (cuDNN allows it by default): float32
    references. Uses the legacy flags, as a user who never touched them leaves them."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@contextmanager
def tf32_on(api: str) -> Iterator[None]:
    """TF32 switched on as users do: ``'legacy'`` ``allow_tf32 = True`` or ``'new'``
    ``fp32_precision = 'tf32'`` (torch >= 2.9); restored afterwards."""
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn
    if api == 'legacy':
        saved = matmul.allow_tf32, conv.allow_tf32
        matmul.allow_tf32 = conv.allow_tf32 = True
        try:
            yield
        finally:
            matmul.allow_tf32, conv.allow_tf32 = saved
        return
    if not hasattr(matmul, 'fp32_precision'):
        pytest.skip(f'torch {torch.__version__} has no fp32_precision API')
    saved = matmul.fp32_precision, conv.conv.fp32_precision
    matmul.fp32_precision = conv.conv.fp32_precision = 'tf32'
    try:
        yield
    finally:
        matmul.fp32_precision, conv.conv.fp32_precision = saved


def tf32_flags(api: str) -> tuple:
    """The TF32 settings of matmuls and convolutions, read through ``api``'s flags."""
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn
    if api == 'legacy':
        return matmul.allow_tf32, conv.allow_tf32
    return matmul.fp32_precision, conv.conv.fp32_precision
