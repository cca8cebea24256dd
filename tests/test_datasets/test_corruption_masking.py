"""Gridded and random-box masking: statistics, grid alignment, fill value, bad parameters."""

import numpy as np
import pytest
from mmpretrain.registry import TRANSFORMS
from skimage import data as skdata

import mmpretrain_ebm  # noqa: F401  (registers the transforms)


@pytest.fixture(scope='module')
def photo224() -> np.ndarray:
    """A 224x224 BGR uint8 crop of a real photograph."""
    return np.ascontiguousarray(skdata.astronaut()[0:224, 140:364, ::-1])


def masked_pixels(clean: np.ndarray, corrupted: np.ndarray) -> np.ndarray:
    """Where the corruption changed the image (the mean is never an integer pixel value)."""
    return np.any(corrupted != clean, axis=2)


def check_fill(transform, clean, corrupted):
    mask = masked_pixels(clean, corrupted)
    assert np.all(corrupted[mask] == transform.mean)  # masked pixels take the mean exactly
    assert np.array_equal(corrupted[~mask], clean[~mask].astype(np.float32))
    return mask


@pytest.mark.parametrize('cell, ratio', [(16, 0.1), (16, 0.7), (32, 0.5), (28, 0.9), (8, 0.3)])
def test_grid_mask_fraction_and_patch_grid(photo224, cell, ratio):
    transform = TRANSFORMS.build(dict(type='GridMaskCorruption', cell_size=cell, mask_ratio=ratio))
    np.random.seed(0)
    for _ in range(5):
        mask = check_fill(transform, photo224, transform(dict(img=photo224))['img'][1])
        side = 224 // cell
        cells = mask.reshape(side, cell, side, cell).transpose(0, 2, 1, 3).reshape(side**2, -1)
        # On the grid: every cell (a ViT patch when cell=16) is wholly masked or wholly kept.
        assert np.all(cells.all(axis=1) | ~cells.any(axis=1))
        # Within one cell of the target fraction.
        assert abs(mask.sum() - ratio * 224 * 224) <= cell * cell
        assert cells.all(axis=1).sum() == round(ratio * side**2)


def test_grid_mask_cells_cut_at_the_border(photo224):
    """24-px cells on 224 px (the paper's Gridded (24)): 10x10 cells, the last ones 8 px."""
    transform = TRANSFORMS.build(dict(type='GridMaskCorruption', cell_size=24, mask_ratio=0.5))
    np.random.seed(1)
    mask = check_fill(transform, photo224, transform(dict(img=photo224))['img'][1])
    edges = np.arange(0, 224, 24)
    cells = np.add.reduceat(np.add.reduceat(mask.astype(int), edges, 0), edges, 1)
    sizes = np.outer(np.diff(edges, append=224), np.diff(edges, append=224))
    assert np.all((cells == 0) | (cells == sizes))
    assert np.count_nonzero(cells) == 50


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(mask_ratio=0), 'mask_ratio must be a number in the open interval'),
        (dict(mask_ratio=1.0), r'\(0, 1\), got 1.0'),
        (dict(mask_ratio=-0.2), 'got -0.2'),
        (dict(mask_ratio='0.5'), "got '0.5'"),
        (dict(cell_size=0), 'cell_size must be a positive integer, got 0'),
        (dict(cell_size=16.0), 'got 16.0'),
    ],
)
def test_grid_mask_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TRANSFORMS.build(dict(type='GridMaskCorruption', **kwargs))


def test_grid_mask_cell_larger_than_image():
    transform = TRANSFORMS.build(dict(type='GridMaskCorruption', cell_size=32))
    with pytest.raises(ValueError, match=r'cell_size=32 does not fit a 24x64 image'):
        transform(dict(img=np.zeros((24, 64, 3), np.uint8)))


# Documented in RandomBoxMaskCorruption's docstring: masked fraction at 224 px, mean and std.
DOCUMENTED_FRACTIONS = {'small': (0.681, 0.028), 'large': (0.634, 0.045)}


@pytest.mark.parametrize('preset', ['small', 'large'])
def test_random_box_presets_mask_the_documented_fraction(preset):
    transform = TRANSFORMS.build(dict(type='RandomBoxMaskCorruption', preset=preset))
    np.random.seed(0)
    draws = 300
    fractions = np.array([transform.sample_mask(224, 224).mean() for _ in range(draws)])
    mean, std = DOCUMENTED_FRACTIONS[preset]
    assert abs(fractions.mean() - mean) < 4 * std / np.sqrt(draws) + 1e-3
    assert abs(fractions.std() - std) < 0.25 * std


def test_random_box_fill_and_image_area_unit(photo224):
    """One box: a single rectangle of the sampled area and aspect ratio, inside the image."""
    transform = TRANSFORMS.build(
        dict(
            type='RandomBoxMaskCorruption',
            num_boxes=1,
            size_range=(0.1, 0.1),
            aspect_ratio_range=(0.5, 2.0),
        )
    )
    np.random.seed(0)
    for _ in range(20):
        mask = check_fill(transform, photo224, transform(dict(img=photo224))['img'][1])
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        assert mask.sum() == height * width  # a rectangle
        assert abs(height * width - 0.1 * 224 * 224) < (height + width + 1) / 2 + 1
        assert 0.5 * 0.9 < height / width < 2.0 * 1.1


def test_random_box_per_box_unit_divides_by_the_number_of_boxes():
    per_box = TRANSFORMS.build(
        dict(
            type='RandomBoxMaskCorruption',
            num_boxes=4,
            size_range=(0.2, 0.2),
            size_unit='image_area_per_box',
        )
    )
    whole = TRANSFORMS.build(
        dict(
            type='RandomBoxMaskCorruption',
            num_boxes=4,
            size_range=(0.2, 0.2),
            size_unit='image_area',
        )
    )
    np.random.seed(0)
    for _ in range(20):
        assert 0.05 * 0.95 < per_box.sample_mask(100, 100).mean() <= 0.2 * 1.05
        assert 0.2 * 0.95 < whole.sample_mask(100, 100).mean() <= 0.8 * 1.05


def test_random_box_sides_longer_than_the_image_are_cut_to_it():
    # area 40*30, aspect 4: 69 x 17 px, cut to the image's 40 rows
    transform = TRANSFORMS.build(
        dict(
            type='RandomBoxMaskCorruption',
            num_boxes=1,
            size_range=(1.0, 1.0),
            aspect_ratio_range=(4.0, 4.0),
        )
    )
    mask = transform.sample_mask(40, 30)
    columns = mask.any(axis=0)
    assert columns.sum() == 17 and mask[:, columns].all()


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(preset='medium'), r"preset must be one of \['large', 'small'\].*'medium'"),
        (dict(preset='small', num_boxes=10), r"not both \(got \['num_boxes'\]\)"),
        (dict(), 'or both num_boxes and size_range'),
        (dict(num_boxes=10), r"got \['num_boxes'\]"),
        (dict(num_boxes=0, size_range=(0.1, 0.2)), 'num_boxes must be a positive integer, got 0'),
        (dict(num_boxes=5, size_range=(0.2, 0.1)), r'0 < low <= high.*\(0.2, 0.1\)'),
        (dict(num_boxes=5, size_range=(0.0, 0.1)), r'size_range must satisfy.*\(0.0, 0.1\)'),
        (dict(num_boxes=5, size_range=0.1), r'size_range must be a pair.*0.1'),
        (dict(num_boxes=5, size_range=(0.1, 0.2), size_unit='pixels'), "size_unit.*'pixels'"),
        (
            dict(num_boxes=3, size_range=(0.5, 2.0)),
            r"size_range \(0.5, 2.0\) in unit 'image_area' allows boxes larger than the image",
        ),
        (
            dict(num_boxes=3, size_range=(1.0, 3.5), size_unit='image_area_per_box'),
            r'largest normalized size is 3\b',
        ),
        (dict(preset='large', aspect_ratio_range=(2.0, 1.0)), r'aspect_ratio_range.*\(2.0, 1.0\)'),
    ],
)
def test_random_box_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TRANSFORMS.build(dict(type='RandomBoxMaskCorruption', **kwargs))
