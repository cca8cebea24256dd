"""Patch sorting: an exact permutation of whole grid cells, every chosen cell moved, the rest
of the image and the clean view untouched; grey images, the mix, bad arguments."""

import numpy as np
import pytest
from mmpretrain.registry import TRANSFORMS

import mmpretrain_ebm  # noqa: F401  (registers the transforms)


def cells_of(img: np.ndarray, cell: int) -> np.ndarray:
    """The whole cells of ``img`` [rows * cols, cell, cell, C], row-major."""
    rows, cols = img.shape[0] // cell, img.shape[1] // cell
    grid = img[: rows * cell, : cols * cell].reshape(rows, cell, cols, cell, -1)
    return grid.transpose(0, 2, 1, 3, 4).reshape(rows * cols, cell, cell, -1)


@pytest.fixture(scope='module')
def noise() -> np.ndarray:
    """70x85 BGR noise: every 16-px cell distinct; a 6-px and a 5-px border of cut cells."""
    return np.random.default_rng(0).integers(0, 256, (70, 85, 3), dtype=np.uint8)


@pytest.mark.parametrize('ratio, moved', [(0.5, 10), (0.25, 5), (1.0, 20), (0.01, 2)])
def test_whole_cells_are_permuted_exactly(noise, ratio, moved):
    transform = TRANSFORMS.build(dict(type='PatchSortingCorruption', shuffle_ratio=ratio))
    np.random.seed(1)
    clean, corrupted = transform(dict(img=noise))['img']
    assert clean is noise and corrupted.dtype == np.float32
    before, after = cells_of(noise, 16).astype(np.float32), cells_of(corrupted, 16)
    # every cell of the corrupted view is one cell of the clean image, each used once
    matches = [
        [i for i, candidate in enumerate(before) if np.array_equal(candidate, cell)]
        for cell in after
    ]
    assert all(len(m) == 1 for m in matches)
    source = [m[0] for m in matches]
    assert sorted(source) == list(range(len(before)))
    # the chosen cells all moved (a cycle has no fixed point), the others stayed
    assert sum(s != t for t, s in enumerate(source)) == moved
    # the cut cells at the bottom and right border stay where they were
    np.testing.assert_array_equal(corrupted[64:], noise[64:])
    np.testing.assert_array_equal(corrupted[:, 80:], noise[:, 80:])


def test_grey_images_and_the_mix(noise):
    grey = noise[..., :1]
    sort = dict(type='PatchSortingCorruption', cell_size=8, shuffle_ratio=0.5)
    transform = TRANSFORMS.build(dict(sort, mean=[72.94], std=[90.02]))
    np.random.seed(0)
    clean, corrupted = transform(dict(img=grey[..., 0]))['img']
    assert corrupted.shape == (70, 85, 1)
    assert sorted(cells_of(corrupted, 8).reshape(80, -1).tolist()) == sorted(
        cells_of(clean, 8).astype(np.float32).reshape(80, -1).tolist()
    )
    flipped = grey[:, ::-1]  # RandomFlip's negative-stride view
    clean, corrupted = transform(dict(img=flipped))['img']
    assert clean is flipped and corrupted.shape == (70, 85, 1)
    mix = TRANSFORMS.build(
        dict(
            type='MixedCorruption',
            corruptions=[sort, dict(type='GridMaskCorruption', cell_size=8, mask_ratio=0.5)],
        )
    )
    names = set()
    for seed in range(20):
        np.random.seed(seed)
        names.add(mix(dict(img=noise))['corruption'])
    assert names == {'patch_sorting', 'grid_mask'}


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(cell_size=0), 'cell_size must be a positive integer, got 0'),
        (dict(cell_size=True), 'cell_size must be a positive integer, got True'),
        (dict(shuffle_ratio=0), r'shuffle_ratio must be a number in .*\(0, 1\], got 0'),
        (dict(shuffle_ratio=1.5), r'shuffle_ratio .*got 1.5'),
        (dict(shuffle_ratio='half'), r"shuffle_ratio .*got 'half'"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TRANSFORMS.build(dict(type='PatchSortingCorruption', **kwargs))


def test_an_image_with_one_whole_cell_is_refused():
    transform = TRANSFORMS.build(dict(type='PatchSortingCorruption', cell_size=32))
    with pytest.raises(ValueError, match=r'cell_size=32 leaves 1 whole cell.*40x50.*<= 25'):
        transform(dict(img=np.zeros((40, 50, 3), np.uint8)))


def test_the_fashion_mnist_mix_with_sorting_builds_its_four_tasks():
    """The config's pipeline step, as the runner builds it (a merged base dict would carry
    the grid mask's arguments into MixedCorruption)."""
    from pathlib import Path

    from mmengine.config import Config

    config = Path(__file__).parents[2] / (
        'configs/ebm/ebm_vit-mini-p4_1xb256-mixed-sort-coslr-10e_fashion-mnist.py'
    )
    transform = TRANSFORMS.build(Config.fromfile(config).train_dataloader.dataset.pipeline[-2])
    names = set()
    for seed in range(40):
        np.random.seed(seed)
        image = np.random.randint(0, 256, (28, 28, 1), dtype=np.uint8)
        names.add(transform(dict(img=image))['corruption'])
    assert names == {'random_box_mask', 'super_resolution', 'denoising', 'patch_sorting'}
