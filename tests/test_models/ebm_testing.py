"""Helpers for the model tests: tiny backbones, real photographs, a grid-mask corruption."""

import copy
from typing import Dict, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from skimage import data as skdata

import mmpretrain_ebm  # noqa: F401  (registers the models)
from mmpretrain_ebm.models import EnergyRestorationAlgorithm

IMG = 32
MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)

# backbone config and the width of its pooled output
TINY_BACKBONES: Dict[str, Tuple[dict, int]] = {
    'vit': (
        dict(
            type='VisionTransformer',
            img_size=IMG,
            patch_size=8,
            out_type='cls_token',
            arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64),
        ),
        32,
    ),
    'swin': (
        dict(
            type='SwinTransformer',
            img_size=IMG,
            patch_size=4,
            window_size=4,
            out_indices=(1,),
            arch=dict(embed_dims=16, depths=[1, 1], num_heads=[1, 2]),
        ),
        32,
    ),
    'convnext': (
        dict(type='ConvNeXt', out_indices=(1,), arch=dict(depths=[1, 1], channels=[16, 32])),
        32,
    ),
    'resnet': (
        dict(
            type='ResNet',
            depth=18,
            stem_channels=8,
            base_channels=8,
            num_stages=2,
            strides=(1, 2),
            dilations=(1, 1),
            out_indices=(1,),
            zero_init_residual=False,
        ),
        16,
    ),
}


def build_model(backbone: str = 'vit', **kwargs) -> EnergyRestorationAlgorithm:
    """A tiny EnergyRestorationAlgorithm on ``backbone`` (kwargs go to the algorithm)."""
    backbone_cfg, width = TINY_BACKBONES[backbone]
    kwargs.setdefault('head', dict(type='EnergyHead', in_channels=width))
    kwargs.setdefault(
        'data_preprocessor',
        dict(
            type='SelfSupDataPreprocessor',
            mean=MEAN.flatten().tolist(),
            std=STD.flatten().tolist(),
            to_rgb=True,
        ),
    )
    model = EnergyRestorationAlgorithm(backbone=copy.deepcopy(backbone_cfg), **kwargs)
    model.init_weights()
    return model


def real_photo_batch(count: int = 8, size: int = IMG, seed: int = 0) -> torch.Tensor:
    """``count`` normalized RGB crops [count, 3, size, size] of scikit-image photographs."""
    rng = np.random.default_rng(seed)
    photos = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
    crops = []
    for index in range(count):
        photo = photos[index % len(photos)]
        crop = 4 * size
        top = rng.integers(0, photo.shape[0] - crop + 1)
        left = rng.integers(0, photo.shape[1] - crop + 1)
        patch = torch.from_numpy(photo[top : top + crop, left : left + crop].copy())
        crops.append(patch.permute(2, 0, 1).float())
    images = F.interpolate(torch.stack(crops), size=(size, size), mode='area')
    return (images - MEAN) / STD


def grid_mask(
    images: torch.Tensor, patch: int = 8, ratio: float = 0.5, generator: torch.Generator = None
) -> torch.Tensor:
    """Zero (the normalized mean) a random ``ratio`` of the ``patch``-px grid cells."""
    b, _, h, w = images.shape
    keep = torch.rand(b, 1, h // patch, w // patch, generator=generator) >= ratio
    keep = keep.repeat_interleave(patch, 2).repeat_interleave(patch, 3)
    return images * keep
