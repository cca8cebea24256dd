"""Grey (one-channel) images, as Fashion-MNIST's: every corruption but colorization."""

import numpy as np
import pytest
import torch
from mmpretrain.models import SelfSupDataPreprocessor
from mmpretrain.registry import TRANSFORMS
from skimage import data as skdata

import mmpretrain_ebm  # noqa: F401  (registers the corruptions)

GREY = dict(mean=[72.9], std=[90.0])


@pytest.fixture(scope='module')
def camera() -> np.ndarray:
    """A real grey photograph, 28 x 28 as Fashion-MNIST (HxW uint8)."""
    import cv2

    return cv2.resize(skdata.camera(), (28, 28), interpolation=cv2.INTER_AREA)


def corrupt(cfg: dict, img: np.ndarray) -> list:
    return TRANSFORMS.build(dict(cfg, **GREY)).transform(dict(img=img))['img']


@pytest.mark.parametrize('shape', ['hw', 'hw1'])
def test_grid_mask_fills_whole_cells_with_the_grey_mean(camera, shape) -> None:
    img = camera if shape == 'hw' else camera[..., None]
    np.random.seed(0)
    clean, corrupted = corrupt(dict(type='GridMaskCorruption', cell_size=4, mask_ratio=0.5), img)
    assert clean.shape == corrupted.shape == (28, 28, 1)
    assert np.array_equal(clean[..., 0], camera)
    masked = corrupted[..., 0] != camera
    cells = masked.reshape(7, 4, 7, 4).any(axis=(1, 3))
    # every touched cell is wholly the mean; half of the 49 cells (rounded) are masked
    assert cells.sum() <= round(0.5 * 49)
    block = corrupted[..., 0].reshape(7, 4, 7, 4).transpose(0, 2, 1, 3)[cells]
    np.testing.assert_array_equal(block, np.float32(72.9))


def test_random_boxes_and_denoising_keep_one_channel(camera) -> None:
    np.random.seed(1)
    _, boxes = corrupt(dict(type='RandomBoxMaskCorruption', preset='large'), camera)
    assert boxes.shape == (28, 28, 1)
    changed = boxes[..., 0] != camera
    assert changed.any() and np.all(boxes[..., 0][changed] == np.float32(72.9))
    _, noisy = corrupt(dict(type='DenoisingCorruption', gamma_range=(0.25, 0.25)), camera)
    assert noisy.shape == (28, 28, 1)
    # sqrt(1 - g) * std * eps around sqrt(g) x + (1 - sqrt(g)) mean: residual std ~ 77.9
    residual = noisy[..., 0] - (0.5 * camera + 0.5 * 72.9)
    assert 60 < residual.std() < 95


def test_super_resolution_of_a_grey_image_is_blockwise_constant(camera) -> None:
    _, low = corrupt(dict(type='SuperResolutionCorruption', scale=4), camera)
    assert low.shape == (28, 28, 1)
    blocks = low[..., 0].reshape(7, 4, 7, 4).transpose(0, 2, 1, 3).reshape(49, 16)
    assert np.all(blocks == blocks[:, :1])
    # antialiased bicubic averages: close to the block means, never a copy of the input
    means = camera.reshape(7, 4, 7, 4).mean(axis=(1, 3)).reshape(49).astype(np.float32)
    assert np.abs(blocks[:, 0] - means).mean() < 12
    assert not np.array_equal(low[..., 0], camera)


def test_colorization_refuses_grey_normalization() -> None:
    with pytest.raises(ValueError, match='no colour to restore'):
        TRANSFORMS.build(dict(type='ColorizationCorruption', **GREY))


def test_channel_count_must_match_the_normalization(camera) -> None:
    grid = dict(type='GridMaskCorruption', cell_size=4, mask_ratio=0.5)
    with pytest.raises(ValueError, match=r'HxWx1 or HxW grey image, got \(28, 28, 3\)'):
        corrupt(grid, np.repeat(camera[..., None], 3, axis=2))
    with pytest.raises(ValueError, match=r'HxWx3 bgr image, got \(28, 28\)'):
        TRANSFORMS.build(grid).transform(dict(img=camera))
    with pytest.raises(ValueError, match='as many values'):
        TRANSFORMS.build(dict(grid, mean=[1.0], std=[1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match='one \\(grey\\)'):
        TRANSFORMS.build(dict(grid, mean=[1.0, 2.0], std=[1.0, 2.0]))


def test_packed_grey_views_normalize_masked_pixels_to_zero(camera) -> None:
    np.random.seed(2)
    pipeline = [
        TRANSFORMS.build(dict(type='GridMaskCorruption', cell_size=4, mask_ratio=0.5, **GREY)),
        TRANSFORMS.build(dict(type='PackInputs')),
    ]
    results = dict(img=camera)
    for transform in pipeline:
        results = transform(results)
    clean, corrupted = results['inputs']
    assert clean.shape == corrupted.shape == (1, 28, 28)
    preprocessor = SelfSupDataPreprocessor(**GREY)
    views = preprocessor(dict(inputs=[clean[None], corrupted[None]], data_samples=None))['inputs']
    masked = (corrupted[0] != clean[0]) | (corrupted[0] == np.float32(72.9))
    assert torch.all(views[1][0, 0][masked] == 0)
    expected = (torch.from_numpy(camera).float() - 72.9) / 90.0
    torch.testing.assert_close(views[0][0, 0], expected)
