"""The contract every corruption shares: two views, float32, names, normalization, seeds."""

import numpy as np
import pytest
from mmcv.transforms.utils import cache_random_params
from mmpretrain.registry import TRANSFORMS
from skimage import data as skdata

import mmpretrain_ebm  # noqa: F401  (registers the transforms)
from mmpretrain_ebm.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD
from mmpretrain_ebm.datasets.transforms.base import contiguous_image

CORRUPTIONS = {
    'grid_mask': dict(type='GridMaskCorruption', cell_size=16, mask_ratio=0.5),
    'random_box_mask': dict(type='RandomBoxMaskCorruption', preset='small'),
    'super_resolution': dict(type='SuperResolutionCorruption', scale=8),
    'denoising': dict(type='DenoisingCorruption'),
    'colorization': dict(type='ColorizationCorruption'),
    'patch_sorting': dict(type='PatchSortingCorruption', cell_size=16, shuffle_ratio=0.5),
}


@pytest.fixture(scope='module')
def photo() -> np.ndarray:
    """A 96x128 BGR uint8 crop of a real photograph, as LoadImageFromFile gives it."""
    return np.ascontiguousarray(skdata.astronaut()[40:136, 150:278, ::-1])


@pytest.mark.parametrize('name', sorted(CORRUPTIONS))
def test_two_views_float32_and_name(name, photo):
    transform = TRANSFORMS.build(CORRUPTIONS[name])
    clean = photo.copy()
    results = transform(dict(img=clean, img_shape=clean.shape[:2]))
    assert results['corruption'] == name == transform.name
    kept, corrupted = results['img']
    assert kept is clean and np.array_equal(clean, photo)  # clean view untouched
    assert corrupted.dtype == np.float32 and corrupted.shape == photo.shape
    assert not np.array_equal(corrupted, photo.astype(np.float32))  # it did corrupt


@pytest.mark.parametrize('name', sorted(CORRUPTIONS))
def test_flipped_views_are_handled(name, photo):
    """RandomFlip leaves a negative-stride view: corrupted as the array it shows, kept as is."""
    transform = TRANSFORMS.build(CORRUPTIONS[name])
    flipped = photo[:, ::-1]
    np.random.seed(0)
    clean, corrupted = transform(dict(img=flipped))['img']
    np.random.seed(0)
    assert clean is flipped
    assert np.array_equal(corrupted, transform.corrupt(np.ascontiguousarray(flipped)))


@pytest.mark.parametrize(
    'view', [np.s_[:, ::-1], np.s_[::-1], np.s_[::-1, ::-1], np.s_[::2], np.s_[:, :, ::-1]]
)
def test_contiguous_image(photo, view):
    result = contiguous_image(photo[view])
    assert result.flags.c_contiguous and np.array_equal(result, photo[view])


@pytest.mark.parametrize('name', sorted(CORRUPTIONS))
def test_same_seed_same_output(name, photo):
    transform = TRANSFORMS.build(CORRUPTIONS[name])
    outputs = []
    for seed in (3, 3, 4):
        np.random.seed(seed)
        outputs.append(transform(dict(img=photo))['img'][1])
    assert np.array_equal(outputs[0], outputs[1])
    random = name not in ('super_resolution', 'colorization')  # these two are deterministic
    assert np.array_equal(outputs[0], outputs[2]) != random


@pytest.mark.parametrize('name', ['grid_mask', 'random_box_mask', 'denoising', 'patch_sorting'])
def test_cache_random_params_repeats_the_draw(name, photo):
    """mmcv's cache_random_params (used by wrappers such as KeyMapper) sees our randomness."""
    transform = TRANSFORMS.build(CORRUPTIONS[name])
    with cache_random_params(transform):
        first = transform(dict(img=photo))['img'][1].copy()
        second = transform(dict(img=photo))['img'][1].copy()
    assert np.array_equal(first, second)
    assert not np.array_equal(first, transform(dict(img=photo))['img'][1])


def test_mean_and_std_follow_channel_order():
    bgr = TRANSFORMS.build(dict(type='GridMaskCorruption'))
    rgb = TRANSFORMS.build(dict(type='GridMaskCorruption', channel_order='rgb'))
    assert np.array_equal(bgr.mean, np.float32(IMAGENET_MEAN[::-1]))
    assert np.array_equal(rgb.mean, np.float32(IMAGENET_MEAN))
    assert np.array_equal(bgr.std, np.float32(IMAGENET_STD[::-1]))
    assert 'channel_order=' in repr(bgr) and 'mask_ratio=0.7' in repr(bgr)


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(channel_order='hsv'), "channel_order.*'hsv'"),
        (dict(mean=(1.0, 2.0)), r'mean must be three.*\(1.0, 2.0\)'),
        (dict(std=(1.0, 0.0, 1.0)), r'std must be positive.*\(1.0, 0.0, 1.0\)'),
        (dict(std=(1.0, float('nan'), 1.0)), 'std must be three finite'),
    ],
)
@pytest.mark.parametrize('name', sorted(CORRUPTIONS))
def test_bad_normalization_arguments(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        TRANSFORMS.build({**CORRUPTIONS[name], **kwargs})


@pytest.mark.parametrize('name', sorted(CORRUPTIONS))
@pytest.mark.parametrize('shape', [(32, 32), (32, 32, 1), (32, 32, 4)])
def test_rejects_non_rgb_images(name, shape):
    transform = TRANSFORMS.build(CORRUPTIONS[name])
    with pytest.raises(ValueError, match=rf'HxWx3 bgr image, got \({shape[0]}, {shape[1]}'):
        transform(dict(img=np.zeros(shape, np.uint8)))


def test_rejects_an_already_corrupted_pair(photo):
    transform = TRANSFORMS.build(CORRUPTIONS['colorization'])
    results = transform(dict(img=photo))
    with pytest.raises(TypeError, match='list of 2 views'):
        transform(results)
