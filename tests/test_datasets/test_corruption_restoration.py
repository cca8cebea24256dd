"""Super-resolution, denoising and colorization against independent computations."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import TRANSFORMS
from skimage import data as skdata

import mmpretrain_ebm  # noqa: F401  (registers the transforms)
from mmpretrain_ebm.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD


@pytest.fixture(scope='module')
def photo() -> np.ndarray:
    """A 96x128 BGR uint8 crop of a real photograph."""
    return np.ascontiguousarray(skdata.coffee()[100:196, 200:328, ::-1])


def blocks(img: np.ndarray, size: int) -> np.ndarray:
    """(H/size, W/size, size*size, C) view of the size x size blocks of an HxWxC image."""
    h, w, c = img.shape
    return (
        img.reshape(h // size, size, w // size, size, c)
        .transpose(0, 2, 1, 3, 4)
        .reshape(h // size, w // size, size * size, c)
    )


@pytest.mark.parametrize('scale', [2, 4, 8, 16, 32])
def test_super_resolution_blocks_hold_the_bicubic_downsample(photo, scale):
    transform = TRANSFORMS.build(dict(type='SuperResolutionCorruption', scale=scale))
    corrupted = transform(dict(img=photo))['img'][1]
    cells = blocks(corrupted, scale)
    assert np.all(cells == cells[:, :, :1])  # constant in every s x s block
    # Independent reference: torch's antialiased bicubic (PIL's filter) on the same image.
    reference = F.interpolate(
        torch.from_numpy(photo).permute(2, 0, 1)[None].double(),
        size=(96 // scale, 128 // scale),
        mode='bicubic',
        antialias=True,
    )[0].permute(1, 2, 0)
    np.testing.assert_allclose(cells[:, :, 0], reference.numpy(), atol=2e-3)


def test_super_resolution_partial_border_blocks(photo):
    """Sides that are not multiples of s (50x70 at s=16): partial last blocks, aligned output."""
    transform = TRANSFORMS.build(dict(type='SuperResolutionCorruption', scale=16))
    crop = photo[:50, :70]
    corrupted = transform.corrupt(crop)
    assert corrupted.shape == crop.shape
    edges_y, edges_x = np.arange(0, 50, 16), np.arange(0, 70, 16)
    for top, bottom in zip(edges_y, list(edges_y[1:]) + [50]):
        for left, right in zip(edges_x, list(edges_x[1:]) + [70]):
            block = corrupted[top:bottom, left:right]
            assert np.all(block == block[0, 0])
    flat = np.full((50, 70, 3), 77, np.uint8)
    np.testing.assert_allclose(transform.corrupt(flat), 77, atol=1e-4)


def test_super_resolution_scale_one_is_identity(photo):
    transform = TRANSFORMS.build(dict(type='SuperResolutionCorruption', scale=1))
    np.testing.assert_allclose(transform.corrupt(photo), photo, atol=1e-4)


@pytest.mark.parametrize(
    'scale, match', [(0, 'got 0'), (-2, 'got -2'), (1.5, 'got 1.5'), (True, 'got True')]
)
def test_super_resolution_bad_scale(scale, match):
    with pytest.raises(ValueError, match=f'scale must be an integer >= 1, {match}'):
        TRANSFORMS.build(dict(type='SuperResolutionCorruption', scale=scale))


def test_super_resolution_scale_larger_than_image():
    transform = TRANSFORMS.build(dict(type='SuperResolutionCorruption', scale=32))
    with pytest.raises(ValueError, match='scale=32 does not fit a 64x16 image'):
        transform(dict(img=np.zeros((64, 16, 3), np.uint8)))


@pytest.mark.parametrize('gamma', [0.0, 0.3, 0.8, 1.0])
def test_denoising_statistics_for_a_fixed_gamma(photo, gamma):
    """In the normalized space, x~ - sqrt(g) x has mean 0 and variance 1 - g."""
    transform = TRANSFORMS.build(dict(type='DenoisingCorruption', gamma_range=(gamma, gamma)))
    mean, std = np.float32(IMAGENET_MEAN[::-1]), np.float32(IMAGENET_STD[::-1])
    np.random.seed(0)
    corrupted = transform(dict(img=photo))['img'][1]
    noise = (corrupted - mean) / std - np.sqrt(gamma) * (photo - mean) / std
    tolerance = 5 / np.sqrt(noise.size)  # 5 standard errors
    assert abs(noise.mean()) < tolerance + 1e-5
    assert abs(noise.var() - (1 - gamma)) < 5 * np.sqrt(2 / noise.size) * (1 - gamma) + 1e-5
    if 0 < gamma < 1:
        # Kept in float: neither clipped to 0..255 nor rounded.
        assert corrupted.min() < 0 and corrupted.max() > 255
        assert np.any(corrupted != np.round(corrupted))
        per_channel = noise.reshape(-1, 3).std(axis=0)
        np.testing.assert_allclose(per_channel, np.sqrt(1 - gamma), rtol=0.03)


def test_denoising_draws_gamma_uniformly_per_image(photo):
    transform = TRANSFORMS.build(dict(type='DenoisingCorruption'))
    np.random.seed(0)
    gammas = np.array([transform._sample_noise((1, 1, 3))[0] for _ in range(2000)])
    assert gammas.min() >= 0 and gammas.max() <= 1
    assert abs(gammas.mean() - 0.5) < 4 * np.sqrt(1 / 12 / 2000)
    assert np.histogram(gammas, bins=4, range=(0, 1))[0].min() > 440


@pytest.mark.parametrize(
    'gamma_range, match',
    [
        ((-0.1, 0.5), r'0 <= low <= high <= 1, got \(-0.1, 0.5\)'),
        ((0.6, 0.5), r'got \(0.6, 0.5\)'),
        ((0.0, 1.5), r'got \(0.0, 1.5\)'),
        (0.5, 'gamma_range must be a pair'),
    ],
)
def test_denoising_bad_gamma_range(gamma_range, match):
    with pytest.raises(ValueError, match=match):
        TRANSFORMS.build(dict(type='DenoisingCorruption', gamma_range=gamma_range))


@pytest.mark.parametrize('channel_order', ['bgr', 'rgb'])
def test_colorization_channels_equal_the_bt601_luma(photo, channel_order):
    transform = TRANSFORMS.build(dict(type='ColorizationCorruption', channel_order=channel_order))
    img = photo if channel_order == 'bgr' else np.ascontiguousarray(photo[..., ::-1])
    corrupted = transform(dict(img=img))['img'][1]
    b, g, r = (photo[..., i].astype(np.float64) for i in range(3))
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    for channel in range(3):
        np.testing.assert_allclose(corrupted[..., channel], luma, atol=1e-3)
