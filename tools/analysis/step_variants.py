"""The variants that ``benchmark_step.py`` times: each builds a model and returns one
training step (a no-argument callable) on a fixed batch of photographs.

Variants (all train with AdamW through a full optimizer step):

- ``bare-n1``, ``bare-n2``: the paper's Listing 1 written here in plain PyTorch on the same
  backbone and head (math attention, the only backend with a double backward), no mmengine.
  ``bare-n2`` is the reference of the ratio columns.
- ``bare-step-compiled-n2``: the same loop with each step (its loss and its parameter and
  alpha gradients) one compiled ``torch.func`` function: the alternative to
  ``grad_mode='compiled'`` (a compiled dE/dx differentiated by autograd).
- ``bare-fd-n2``: the same loop with the finite-difference estimator of
  ``grad_mode='finite_difference'`` in its leanest form (two first-order passes per step,
  fused attention, float32): the floor of that estimator on the hardware, against which
  ``ebm-n2-fd`` shows its overhead and ``bare-n2`` the estimator's own gain.
- ``ebm-n1``, ``ebm-n2``: :class:`EnergyRestorationAlgorithm` through ``train_step`` as the
  runner calls it (data preprocessor, loss parsing, ``OptimWrapper``), default settings
  (exact gradient, ``stepwise_backward=True``, ``recompute_elementwise=True``,
  ``log_clean_energy=10``: the timed steps are not among the logging ones).
- ``ebm-n2-log1``: ``log_clean_energy=True``: the clean-energy forward on every step; the
  default pays a tenth of the difference to ``ebm-n2`` on average.
- ``ebm-n2-keep``: ``recompute_elementwise=False``: the graph keeps GELU outputs and the
  GELU/softmax backward results instead of recomputing them.
- ``ebm-n2-whole``: ``stepwise_backward=False``: one backward of all steps, as Listing 1.
- ``ebm-n2-ckpt``, ``ebm-n2-whole-ckpt``: ``grad_checkpoint=True`` (non-reentrant).
- ``ebm-n2-fd``, ``ebm-n2-fd-ckpt``: ``grad_mode='finite_difference'``.
- ``ebm-n1-compiled``, ``ebm-n2-compiled``: ``grad_mode='compiled'`` (the first warm-up step
  compiles; the table's ``1st s`` column shows it).
- ``mae``: MMPretrain's MAE on the same ViT (decoder 512-d, 8 blocks, mask ratio 0.75);
  ViT only, so the default list leaves it out for other backbones.
- ``supervised``: MMPretrain's ``ImageClassifier``, same backbone, linear 1000-class head.

Without CONFIG the model is the energy model of ``--backbone``/``--arch`` (a ViT pools its
patch tokens after the final LayerNorm, as the repository's configs do). With CONFIG its
``model`` is used and ``--backbone``/``--arch`` are ignored.
"""

import argparse
import copy
from typing import Callable, Dict, Tuple

import numpy as np
import torch
from bare_loops import (
    finite_difference_gradients,
    listing1_gradients,
    whole_step_compiled_gradients,
)

EBM_VARIANTS: Dict[str, dict] = {
    'ebm-n1': dict(num_steps=1),
    'ebm-n2': dict(num_steps=2),
    'ebm-n2-log1': dict(num_steps=2, log_clean_energy=True),
    'ebm-n2-keep': dict(num_steps=2, recompute_elementwise=False),
    'ebm-n2-whole': dict(num_steps=2, stepwise_backward=False),
    'ebm-n2-ckpt': dict(num_steps=2, grad_checkpoint=True),
    'ebm-n2-whole-ckpt': dict(num_steps=2, stepwise_backward=False, grad_checkpoint=True),
    'ebm-n2-fd': dict(num_steps=2, grad_mode='finite_difference'),
    'ebm-n2-fd-ckpt': dict(num_steps=2, grad_mode='finite_difference', grad_checkpoint=True),
    'ebm-n1-compiled': dict(num_steps=1, grad_mode='compiled'),
    'ebm-n2-compiled': dict(num_steps=2, grad_mode='compiled'),
    'ebm-n2-compiled-autotune': dict(
        num_steps=2, grad_mode=dict(type='CompiledInputGradient', mode='max-autotune')
    ),
    'ebm-n2-compiled-mem50': dict(
        num_steps=2, grad_mode=dict(type='CompiledInputGradient', memory_budget=0.5)
    ),
    'ebm-n2-compiled-mem20': dict(
        num_steps=2, grad_mode=dict(type='CompiledInputGradient', memory_budget=0.2)
    ),
}
MAE_BACKBONE = 'VisionTransformer'  # the only backbone MMPretrain's MAE has an encoder for

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]
BACKBONES = {
    'vit': lambda arch, size: dict(
        type='VisionTransformer',
        arch=arch,
        img_size=size,
        patch_size=16,
        out_type='avg_featmap',
        final_norm=False,
    ),
    'convnext': lambda arch, size: dict(type='ConvNeXt', arch=arch),
    'swin': lambda arch, size: dict(type='SwinTransformer', arch=arch, img_size=size),
}


def backbone_cfg(args: argparse.Namespace) -> dict:
    """The backbone config of the benchmarked model (CONFIG's, else ``--backbone``'s);
    nothing is built."""
    if args.config:
        return energy_model_cfg(args)['backbone']
    return BACKBONES[args.backbone](args.arch, args.img_size)


def default_variants(args: argparse.Namespace) -> Tuple[str, ...]:
    """Every variant that can run on the backbone: ``mae`` only on a VisionTransformer."""
    if backbone_cfg(args)['type'] == MAE_BACKBONE:
        return VARIANTS
    return tuple(variant for variant in VARIANTS if variant != 'mae')


def energy_model_cfg(args: argparse.Namespace) -> dict:
    """The energy-model config (``type='EnergyRestorationAlgorithm'``)."""
    if args.config:
        from mmengine.config import Config

        config = Config.fromfile(args.config)
        cfg = config.model.to_dict()
        if config.get('data_preprocessor') and not cfg.get('data_preprocessor'):
            cfg['data_preprocessor'] = config.data_preprocessor.to_dict()  # as the runner does
        if cfg.get('type') != 'EnergyRestorationAlgorithm':
            raise SystemExit(
                f'{args.config}: model.type is {cfg.get("type")!r}, expected '
                "'EnergyRestorationAlgorithm'"
            )
        return cfg
    backbone = BACKBONES[args.backbone](args.arch, args.img_size)
    return dict(
        type='EnergyRestorationAlgorithm',
        backbone=backbone,
        head=dict(type='EnergyHead', in_channels=backbone_output(backbone, args)[0]),
        data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=MEAN, std=STD, to_rgb=True),
    )


def backbone_output(backbone_cfg: dict, args: argparse.Namespace) -> Tuple[int, int]:
    """(width, ndim) of the backbone's last output, from a forward of one image."""
    from mmpretrain.registry import MODELS

    backbone = MODELS.build(copy.deepcopy(backbone_cfg))
    with torch.no_grad():
        out = backbone(torch.zeros(1, 3, args.img_size, args.img_size))[-1]
    return (out.shape[1] if out.dim() == 4 else out.shape[-1]), out.dim()


def normalization(args: argparse.Namespace) -> Tuple[list, list, bool]:
    """(mean, std, to_rgb) of the energy model's data preprocessor (the ImageNet values
    without CONFIG); one value each for a grey model."""
    preprocessor = energy_model_cfg(args).get('data_preprocessor') or {}
    mean, std = preprocessor.get('mean', MEAN), preprocessor.get('std', STD)
    return list(mean), list(std), bool(preprocessor.get('to_rgb', False)) and len(mean) == 3


def photo_batch(args: argparse.Namespace) -> Tuple[torch.Tensor, torch.Tensor]:
    """Batches as the dataloader delivers them (BGR, or grey for a one-channel backbone):
    clean (uint8) and grid-masked (float32; 16 px cells, half of them, filled with the mean,
    i.e. 0 after normalization)."""
    import cv2
    from skimage import data as skdata

    photos = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
    size = args.img_size
    clean = np.stack(
        [
            cv2.resize(photos[i % 4], (size, size), interpolation=cv2.INTER_AREA)
            for i in range(args.batch_size)
        ]
    )[..., ::-1]  # RGB -> BGR
    mean, _, _ = normalization(args)
    if backbone_cfg(args).get('in_channels', 3) == 1:
        clean = np.stack([cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in clean])[..., None]
    else:
        mean = mean[::-1]  # filled in BGR
    rng = np.random.default_rng(0)
    cells = rng.random((args.batch_size, -(-size // 16), -(-size // 16))) < 0.5
    mask = cells.repeat(16, 1).repeat(16, 2)[:, :size, :size]
    corrupted = clean.astype(np.float32)
    corrupted[mask] = mean
    to_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2)  # noqa
    return to_tensor(clean), to_tensor(corrupted)


def optim_wrapper(model: torch.nn.Module, device: str):
    from mmengine.optim import AmpOptimWrapper, OptimWrapper

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)
    if device == 'cuda':
        return AmpOptimWrapper(optimizer=optimizer, dtype='bfloat16')
    return OptimWrapper(optimizer=optimizer)


def mmengine_step(model: torch.nn.Module, data: dict, device: str) -> Callable[[], None]:
    wrapper = optim_wrapper(model, device)
    return lambda: model.train_step(data, wrapper)


def build_ebm(name: str, args: argparse.Namespace, clean, corrupted) -> Callable[[], None]:
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    import mmpretrain_ebm  # noqa: F401

    cfg = energy_model_cfg(args)
    cfg.update(EBM_VARIANTS[name])
    model = MODELS.build(cfg).to(args.device)
    data = dict(inputs=[clean, corrupted], data_samples=[DataSample()] * len(clean))
    return mmengine_step(model, data, args.device)


#: ``bare-*`` variants: (number of steps, how the gradients are computed).
BARE_VARIANTS = {
    'bare-n1': (1, listing1_gradients),
    'bare-n2': (2, listing1_gradients),
    'bare-fd-n2': (2, finite_difference_gradients),
    'bare-step-compiled-n2': (2, whole_step_compiled_gradients),
}
VARIANTS = (*BARE_VARIANTS, *EBM_VARIANTS, 'mae', 'supervised')


def build_bare(name: str, args: argparse.Namespace, clean, corrupted) -> Callable:
    """A plain PyTorch training step on the same backbone and head: AdamW, SmoothL1(beta=1),
    the gradients of :data:`BARE_VARIANTS`."""
    from mmpretrain.registry import MODELS

    import mmpretrain_ebm  # noqa: F401

    num_steps, gradients = BARE_VARIANTS[name]
    cfg = energy_model_cfg(args)
    backbone = MODELS.build(cfg['backbone']).to(args.device)
    head = MODELS.build(cfg['head']).to(args.device)
    backbone.train()  # mmpretrain backbones' train() returns None: no chaining
    alpha = torch.nn.Parameter(torch.tensor(1.0, device=args.device))
    params = [*backbone.parameters(), *head.parameters(), alpha]
    optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)
    mean, std, to_rgb = normalization(args)
    mean = torch.tensor(mean, device=args.device).view(1, -1, 1, 1)
    std = torch.tensor(std, device=args.device).view(1, -1, 1, 1)
    order = [2, 1, 0] if to_rgb else list(range(clean.shape[1]))  # BGR -> RGB as to_rgb does
    images = (clean[:, order].float() - mean) / std
    start = (corrupted[:, order].float() - mean) / std

    def step() -> None:
        optimizer.zero_grad()
        gradients(backbone, head, alpha, start, images, num_steps)
        optimizer.step()

    return step


def build_mae(args: argparse.Namespace, clean, corrupted) -> Callable[[], None]:
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    backbone = backbone_cfg(args)
    if backbone['type'] != MAE_BACKBONE:
        raise SystemExit(f'mae needs a VisionTransformer backbone, got {backbone["type"]}')
    width, _ = backbone_output(backbone, args)
    patch = backbone.get('patch_size', 16)
    cfg = dict(
        type='MAE',
        backbone=dict(
            type='MAEViT',
            arch=backbone['arch'],
            img_size=args.img_size,
            patch_size=patch,
            mask_ratio=0.75,
        ),
        neck=dict(
            type='MAEPretrainDecoder',
            num_patches=(args.img_size // patch) ** 2,
            patch_size=patch,
            in_chans=3,
            embed_dim=width,
            decoder_embed_dim=512,
            decoder_depth=8,
            decoder_num_heads=16,
            mlp_ratio=4.0,
        ),
        head=dict(
            type='MAEPretrainHead',
            norm_pix=True,
            patch_size=patch,
            loss=dict(type='PixelReconstructionLoss', criterion='L2'),
        ),
        data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=MEAN, std=STD, to_rgb=True),
    )
    model = MODELS.build(cfg).to(args.device)
    data = dict(inputs=clean, data_samples=[DataSample()] * len(clean))
    return mmengine_step(model, data, args.device)


def build_supervised(args: argparse.Namespace, clean, corrupted) -> Callable[[], None]:
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    backbone = backbone_cfg(args)
    width, ndim = backbone_output(backbone, args)
    cfg = dict(
        type='ImageClassifier',
        backbone=backbone,
        neck=dict(type='GlobalAveragePooling') if ndim == 4 else None,
        head=dict(
            type='LinearClsHead',
            num_classes=1000,
            in_channels=width,
            loss=dict(type='CrossEntropyLoss'),
        ),
        data_preprocessor=dict(type='ClsDataPreprocessor', mean=MEAN, std=STD, to_rgb=True),
    )
    model = MODELS.build(cfg).to(args.device)
    samples = [DataSample().set_gt_label(i % 1000) for i in range(len(clean))]
    return mmengine_step(model, dict(inputs=clean, data_samples=samples), args.device)


def build_variant(name: str, args: argparse.Namespace) -> Callable[[], None]:
    clean, corrupted = photo_batch(args)
    clean, corrupted = clean.to(args.device), corrupted.to(args.device)
    torch.manual_seed(0)
    if name in BARE_VARIANTS:
        return build_bare(name, args, clean, corrupted)
    if name in EBM_VARIANTS:
        return build_ebm(name, args, clean, corrupted)
    if name == 'mae':
        return build_mae(args, clean, corrupted)
    return build_supervised(args, clean, corrupted)
