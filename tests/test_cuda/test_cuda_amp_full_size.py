"""AMP at full size: DeiT-S (configs/_base_/models/ebm_deit-small-p16.py), 224 px, one N = 2
training step at initialization on real photos with half of the 16-px cells masked; relative
error of all backbone gradients under bf16 and fp16 autocast against fp32.

The loss is a mean over every pixel, so the gradient entering the fp16 double backward
shrinks with the batch: bf16 and fp16 are checked at batch 8 and bf16 also, on CUDA, at 32
(the configs' DeiT-S batch per GPU); fp16 at 32 is only measured (a non-strict xfail:
docs/algorithm.md advises bf16 there). About 10 s on an H200; on a 2-core CPU several minutes,
so the dry run (``gpu_check.sh`` without a GPU) leaves these out.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from device_testing import gradients, ieee_float32, relative_error
from ebm_testing import MEAN, STD
from mmengine.config import Config
from mmpretrain.registry import MODELS
from skimage import data as skdata

import mmpretrain_ebm  # noqa: F401

CONFIG = Path(__file__).parents[2] / 'configs' / '_base_' / 'models' / 'ebm_deit-small-p16.py'
#: bf16's error is about 7e-3 whatever the batch (issue 14, CPU); fp16 must do as well.
TOLERANCE = 2e-2


def photos_224(count: int, device: torch.device):
    """``count`` normalized 224-px photos and their copies with half the 16-px cells zeroed."""
    photos = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
    resized = [
        cv2.resize(photos[i % 4], (224, 224), interpolation=cv2.INTER_AREA) for i in range(count)
    ]
    clean = (torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).float() - MEAN) / STD
    keep = torch.rand(count, 1, 14, 14, generator=torch.Generator().manual_seed(0)) >= 0.5
    corrupted = clean * keep.repeat_interleave(16, 2).repeat_interleave(16, 3)
    return clean.to(device), corrupted.to(device)


@pytest.fixture(scope='module')
def deit_small(device):
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(CONFIG)).model)
    model.init_weights()
    return model.to(device)


@pytest.mark.parametrize('batch', [8, 32])
@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16], ids=['bf16', 'fp16'])
def test_full_size_amp_backbone_gradients(
    device, deit_small, dtype, batch, record_property, request
):
    if batch > 8 and device.type != 'cuda':
        pytest.skip('batch 32 at 224 px takes too long on a CPU')
    if dtype == torch.float16 and batch > 8:
        request.applymarker(
            pytest.mark.xfail(
                reason='fp16 at batch 32: 4e-2 on CPU autocast (issue 14), the gradient '
                'entering the fp16 double backward underflows; docs/algorithm.md: use bf16',
                strict=False,
            )
        )
    clean, corrupted = photos_224(batch, device)
    state = {k: v.clone() for k, v in deit_small.state_dict().items()}
    with ieee_float32():
        reference = gradients(deit_small, clean, corrupted)
    deit_small.load_state_dict(state)
    estimate = gradients(deit_small, clean, corrupted, dtype=dtype)
    deit_small.load_state_dict(state)
    error = relative_error(estimate, reference, prefix='backbone.')
    record_property('relative_error', error)
    print(f'full-size {dtype} batch {batch}: backbone gradient relative error {error:.2e}')
    assert error < TOLERANCE, error
