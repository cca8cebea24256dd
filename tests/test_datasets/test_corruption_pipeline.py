"""A real mmpretrain pipeline and data preprocessor around the corruptions.

LoadImageFromFile -> RandomResizedCrop -> RandomFlip -> corruption -> PackInputs, collated and
normalized by SelfSupDataPreprocessor(to_rgb=True): what the algorithm receives.
"""

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate
from mmpretrain.registry import MODELS, TRANSFORMS
from skimage import data as skdata

import mmpretrain_ebm  # noqa: F401  (registers the transforms)
from mmpretrain_ebm.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD

META_KEYS = ('img_path', 'ori_shape', 'img_shape', 'flip', 'corruption')


@pytest.fixture(scope='module')
def photo_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp('photo') / 'astronaut.png'
    cv2.imwrite(str(path), cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR))
    return str(path)


def build_pipeline(corruption: dict) -> list:
    """The pretraining pipeline's transforms around ``corruption``."""
    return [
        TRANSFORMS.build(cfg)
        for cfg in (
            dict(type='LoadImageFromFile'),
            dict(type='RandomResizedCrop', scale=224),
            dict(type='RandomFlip', prob=0.5),
            corruption,
            dict(type='PackInputs', meta_keys=META_KEYS),
        )
    ]


def run_pipeline(photo_path: str, pipeline, seed: int = 0):
    """The normalized (clean, corrupted) views and the data sample the algorithm receives."""
    if isinstance(pipeline, dict):
        pipeline = build_pipeline(pipeline)
    preprocessor = MODELS.build(
        dict(type='SelfSupDataPreprocessor', mean=IMAGENET_MEAN, std=IMAGENET_STD, to_rgb=True)
    )
    np.random.seed(seed)
    results = dict(img_path=photo_path)
    for transform in pipeline:
        results = transform(results)
    data = preprocessor(default_collate([results]))
    clean, corrupted = (view[0] for view in data['inputs'])
    return clean, corrupted, data['data_samples'][0]


def test_masked_pixels_are_exactly_zero_after_normalization(photo_path):
    corruption = dict(type='GridMaskCorruption', cell_size=16, mask_ratio=0.7)
    clean, corrupted, sample = run_pipeline(photo_path, corruption)
    assert clean.shape == corrupted.shape == (3, 224, 224)
    assert clean.dtype == corrupted.dtype == torch.float32
    assert sample.corruption == 'grid_mask'
    masked = (corrupted != clean).any(dim=0)
    assert torch.equal(corrupted[:, masked], torch.zeros_like(corrupted[:, masked]))
    assert torch.equal(corrupted[:, ~masked], clean[:, ~masked])
    patches = masked.reshape(14, 16, 14, 16).permute(0, 2, 1, 3).reshape(196, 256)
    assert torch.all(patches.all(dim=1) | ~patches.any(dim=1))  # on the ViT-16 patch grid
    assert int(patches.all(dim=1).sum()) == round(0.7 * 196)


def test_random_boxes_are_zero_after_normalization(photo_path):
    clean, corrupted, sample = run_pipeline(
        photo_path, dict(type='RandomBoxMaskCorruption', preset='large')
    )
    masked = (corrupted != clean).any(dim=0)
    assert 0.3 < masked.float().mean() < 0.95
    assert torch.equal(corrupted[:, masked], torch.zeros_like(corrupted[:, masked]))
    assert sample.corruption == 'random_box_mask'


def test_denoising_is_the_formula_in_normalized_space(photo_path):
    pipeline = build_pipeline(dict(type='DenoisingCorruption'))
    denoising, draws = pipeline[3], []
    sample_noise = denoising._sample_noise

    def recording(shape):
        draws.append(sample_noise(shape))
        return draws[-1]

    denoising._sample_noise = recording
    clean, corrupted, sample = run_pipeline(photo_path, pipeline)
    ((gamma, eps),) = draws
    eps_rgb = torch.from_numpy(eps[..., ::-1].copy()).permute(2, 0, 1)  # drawn in BGR order
    expected = np.sqrt(gamma) * clean + np.sqrt(1 - gamma) * eps_rgb
    torch.testing.assert_close(corrupted, expected.float(), atol=2e-5, rtol=0)
    assert sample.corruption == 'denoising'


def test_mixed_pipeline_carries_the_chosen_name(photo_path):
    corruption = dict(
        type='MixedCorruption',
        corruptions=[
            dict(type='SuperResolutionCorruption', scale=16),
            dict(type='ColorizationCorruption'),
        ],
    )
    names = {run_pipeline(photo_path, corruption, seed)[2].corruption for seed in range(8)}
    assert names == {'super_resolution', 'colorization'}
