"""Class-balanced labelled subsets of a classification dataset, drawn by a seed."""

import copy
from typing import Optional, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmpretrain.registry import DATASETS

PARTS = ('train', 'holdout')


def _check_count(value, what: str, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    minimum = 1 if allow_none else 0  # a subset of k per class needs k >= 1
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        allowed = 'a positive integer or None' if allow_none else 'an integer >= 0'
        raise ValueError(f'{what} must be {allowed}, got {value!r}')


@DATASETS.register_module(name='ClassBalancedSplit')
def class_balanced_split(
    dataset: Union[dict, BaseDataset],
    part: str = 'train',
    num_per_class: Optional[int] = None,
    holdout_per_class: int = 500,
    seed: int = 0,
) -> BaseDataset:
    """The ``part`` of ``dataset`` (an mmpretrain dataset with labels), per class:

    the images of class c, shuffled by ``(seed, c)``, are split into a held-out part (the first
    ``holdout_per_class``: a validation split for choosing settings) and the rest, of which
    part ``'train'`` takes the first ``num_per_class`` (``None``: all). So the parts never
    overlap, a class's draw does not depend on the other classes, and for one seed the
    subset of k images per class lies inside that of any larger k.

    Returns the dataset cut to those indices in place (in the dataset's order; a dataset
    given as an object is deep-copied first). Not ``get_subset``: mmengine's
    ``_copy_without_annotation`` keeps one ``memo`` dict as a default argument across
    calls, so after earlier datasets were freed it can return a stale copy for an object
    at a reused address (a subset's pipeline held another dataset). In a config,
    ``dict(type='ClassBalancedSplit', dataset=dict(type='FashionMNIST', ...), ...)``.
    """
    if part not in PARTS:
        raise ValueError(f'part must be one of {PARTS}, got {part!r}')
    _check_count(num_per_class, 'num_per_class', allow_none=True)
    _check_count(holdout_per_class, 'holdout_per_class', allow_none=False)
    dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else copy.deepcopy(dataset)
    labels = np.asarray(dataset.get_gt_labels())
    wanted = holdout_per_class if part == 'holdout' else num_per_class
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        np.random.default_rng([seed, int(label)]).shuffle(members)
        needed = holdout_per_class + (wanted if part == 'train' and wanted is not None else 0)
        if len(members) < needed:
            raise ValueError(
                f'class {label} has {len(members)} images, fewer than the {needed} that '
                f'holdout_per_class={holdout_per_class} and num_per_class={num_per_class} need'
            )
        rest = members[holdout_per_class:]
        chosen.append(members[:holdout_per_class] if part == 'holdout' else rest[:wanted])
    dataset.get_subset_(np.sort(np.concatenate(chosen)).tolist())
    return dataset
