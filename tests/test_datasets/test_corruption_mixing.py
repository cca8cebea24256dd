"""MixedCorruption: choice frequencies, names, shared normalization, bad configurations."""

import numpy as np
import pytest
from mmpretrain.registry import TRANSFORMS

import mmpretrain_ebm  # noqa: F401  (registers the transforms)

CHOICES = [
    dict(type='GridMaskCorruption', cell_size=4, mask_ratio=0.5),
    dict(type='SuperResolutionCorruption', scale=2),
    dict(type='DenoisingCorruption'),
    dict(type='ColorizationCorruption'),
]
NAMES = ['grid_mask', 'super_resolution', 'denoising', 'colorization']


def draw_names(transform, draws: int, seed: int = 0) -> list:
    img = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    np.random.seed(seed)
    return [transform(dict(img=img))['corruption'] for _ in range(draws)]


@pytest.mark.parametrize(
    'weights', [None, [1, 2, 3, 4], [0.5, 0, 0.25, 0.25], np.array([1, 2, 3, 4])]
)
def test_choice_frequencies_within_three_sigma(weights):
    transform = TRANSFORMS.build(dict(type='MixedCorruption', corruptions=CHOICES, weights=weights))
    draws = 4000
    names = draw_names(transform, draws)
    probabilities = np.full(4, 0.25) if weights is None else np.array(weights) / sum(weights)
    for name, p in zip(NAMES, probabilities):
        count = names.count(name)
        assert abs(count - draws * p) <= 3 * np.sqrt(draws * p * (1 - p)), (name, count)


def test_output_is_the_chosen_corruption():
    transform = TRANSFORMS.build(dict(type='MixedCorruption', corruptions=CHOICES))
    img = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    np.random.seed(0)
    for _ in range(20):
        state = np.random.get_state()
        results = transform(dict(img=img))
        # Replaying the same RNG state: the choice, then the chosen corruption's own draws.
        np.random.set_state(state)
        chosen = transform.corruptions[transform._choose()]
        assert chosen.name == results['corruption']
        assert np.array_equal(chosen.corrupt(img), results['img'][1])
        assert results['img'][0] is img


def test_same_seed_same_choices():
    transform = TRANSFORMS.build(dict(type='MixedCorruption', corruptions=CHOICES))
    assert draw_names(transform, 50, seed=1) == draw_names(transform, 50, seed=1)
    assert draw_names(transform, 50, seed=1) != draw_names(transform, 50, seed=2)


def test_accepts_built_corruptions():
    built = [TRANSFORMS.build(cfg) for cfg in CHOICES[:2]]
    transform = TRANSFORMS.build(dict(type='MixedCorruption', corruptions=built))
    assert transform.corruptions == built
    assert 'GridMaskCorruption' in repr(transform)


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(corruptions=[]), r'non-empty list.*got \[\]'),
        (dict(corruptions=CHOICES[0]), 'non-empty list of corruption configs'),
        (
            dict(corruptions=[dict(type='BlurCorruption')]),
            r"unknown corruption.*'BlurCorruption'.*\['ColorizationCorruption'",
        ),
        (dict(corruptions=[dict(type='RandomFlip', prob=0.5)]), "unknown corruption.*'RandomFlip'"),
        (dict(corruptions=['grid_mask']), "unknown corruption 'grid_mask'"),
        (dict(corruptions=CHOICES, weights=[1, 1]), r'one entry per corruption \(4\), got 2'),
        (dict(corruptions=CHOICES, weights=[1, -1, 1, 1]), r'non-negative.*-1.0'),
        (dict(corruptions=CHOICES, weights=[0, 0, 0, 0]), 'not all zero'),
        (dict(corruptions=CHOICES, weights=[1, float('nan'), 1, 1]), 'finite'),
        (dict(corruptions=CHOICES, weights='1234'), r"list of numbers.*'1234'"),
        (dict(corruptions=CHOICES, weights=1), 'list of numbers.*got 1'),
        (dict(corruptions=CHOICES, weights=[1, '2', 1, 1]), r"numbers, got \[1, '2', 1, 1\]"),
        (dict(corruptions=CHOICES, weights=[1, True, 1, 1]), 'numbers, got'),
        (
            dict(corruptions=[CHOICES[0], dict(CHOICES[1], mean=(0, 0, 0))]),
            r'must share mean: .*\(0.0, 0.0, 0.0\)',
        ),
        (
            dict(corruptions=[CHOICES[0], dict(CHOICES[1], channel_order='rgb')]),
            "must share channel_order.*'bgr'.*'rgb'",
        ),
    ],
)
def test_bad_configurations(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TRANSFORMS.build(dict(type='MixedCorruption', **kwargs))
