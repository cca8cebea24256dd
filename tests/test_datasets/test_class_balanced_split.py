"""ClassBalancedSplit (the studies' labelled subsets and held-out split) on generated
Fashion-MNIST idx files."""

import numpy as np
import pytest
from fashion_mnist_testing import write_idx_files
from mmengine.dataset import BaseDataset
from mmpretrain.registry import DATASETS

from mmpretrain_ebm.datasets import class_balanced_split


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('fashion_mnist')
    write_idx_files(root, num_train=400, num_test=100, gz=False, seed=0)
    return root


def labels_of(dataset) -> np.ndarray:
    return np.asarray(dataset.get_gt_labels())


def test_class_balanced_split_parts_are_disjoint_balanced_nested_and_seeded(data_root):
    full = dict(type='FashionMNIST', data_root=str(data_root), download=False)
    all_labels = labels_of(DATASETS.build(full))

    def part(**kwargs):
        subset = class_balanced_split(full, **kwargs)
        # the images are the dataset's own: find each by its pixels
        return subset, labels_of(subset)

    holdout, held_labels = part(part='holdout', holdout_per_class=5)
    train, train_labels = part(part='train', num_per_class=10, holdout_per_class=5)
    larger, _ = part(part='train', num_per_class=20, holdout_per_class=5)
    other_seed, _ = part(part='train', num_per_class=10, holdout_per_class=5, seed=1)
    assert np.bincount(held_labels).tolist() == [5] * 10
    assert np.bincount(train_labels).tolist() == [10] * 10

    def keys(subset):
        return {subset.get_data_info(i)['img'].tobytes() for i in range(len(subset))}

    assert not keys(holdout) & keys(train)
    assert keys(train) < keys(larger)
    assert keys(other_seed) != keys(train)
    everything, _ = part(part='train', holdout_per_class=5)
    assert len(everything) == len(all_labels) - 50
    assert keys(everything) | keys(holdout) == keys(DATASETS.build(full))


def test_class_balanced_split_does_not_use_mmengines_shared_copy_memo(data_root):
    """mmengine's get_subset deep-copies through one memo dict kept as a default argument
    across calls; once addresses of freed objects are reused it hands out stale copies (about
    1 build in 100 of this split had another dataset in its pipeline). The split must leave
    that memo alone and keep its own pipeline."""
    (memo,) = BaseDataset._copy_without_annotation.__defaults__
    before = len(memo)
    pipeline = [dict(type='RandomFlip', prob=0.5), dict(type='PackInputs')]
    for part in ('train', 'holdout'):
        dataset = dict(type='FashionMNIST', data_root=str(data_root), pipeline=pipeline)
        subset = class_balanced_split(dataset, part=part, num_per_class=5, holdout_per_class=5)
        assert [type(t).__name__ for t in subset.pipeline.transforms] == [
            'RandomFlip',
            'PackInputs',
        ]
    assert len(memo) == before


def test_class_balanced_split_of_a_dataset_object_leaves_it_whole(data_root):
    full = DATASETS.build(dict(type='FashionMNIST', data_root=str(data_root), download=False))
    subset = class_balanced_split(full, part='holdout', holdout_per_class=5)
    assert (len(subset), len(full)) == (50, 400)


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(part='val'), "part must be one of \\('train', 'holdout'\\), got 'val'"),
        (dict(num_per_class=0), 'num_per_class must be a positive integer or None, got 0'),
        (dict(holdout_per_class=-1), 'holdout_per_class must be an integer >= 0, got -1'),
        (dict(num_per_class=39, holdout_per_class=5), 'class 0 has 40 images, fewer than the 44'),
    ],
)
def test_class_balanced_split_rejects_bad_arguments(data_root, kwargs, message):
    full = dict(type='FashionMNIST', data_root=str(data_root), download=False)
    with pytest.raises(ValueError, match=message):
        class_balanced_split(full, **kwargs)
