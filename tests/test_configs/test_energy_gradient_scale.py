"""At initialization, masking must not blow up dE/dx (a first step would discard the image).

Masked cells are exactly 0 after normalization; a backbone whose norms see all-zero vectors
there amplifies the input gradient by orders of magnitude (ConvNeXt with mmpretrain's zero
conv-bias init: ~3e6 per pixel). The pretraining configs must keep it of the clean order.
"""

from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

import mmpretrain_ebm  # noqa: F401

CONFIGS = Path(__file__).resolve().parents[2] / 'configs' / 'ebm'


def mean_input_gradient(model, images: torch.Tensor) -> float:
    images = images.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.energy(images).sum(), images)
    return grad.abs().mean().item()


@pytest.mark.parametrize(
    'config',
    [
        'ebm_convnext-tiny_8xb32-mixed-amp-coslr-200e_in1k.py',
        'ebm_swin-tiny_8xb32-mixed-amp-coslr-200e_in1k.py',
        'ebm_deit-small-p16_8xb32-mixed-amp-coslr-200e_in1k.py',
    ],
)
def test_masked_input_gradient_stays_of_the_clean_order(config):
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(CONFIGS / config).model)
    model.init_weights()
    clean = torch.randn(1, 3, 224, 224)
    keep = (torch.rand(1, 1, 14, 14) > 0.7).repeat_interleave(16, 2).repeat_interleave(16, 3)
    ratio = mean_input_gradient(model, clean * keep) / mean_input_gradient(model, clean)
    assert ratio < 100, f'masked/clean input-gradient ratio {ratio:.3g}'
