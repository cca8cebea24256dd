"""Image loading that skips unreadable files instead of stopping the run."""

import logging
import math
from typing import Optional, Set, Tuple

from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log
from mmpretrain.registry import TRANSFORMS


class UnreadableImagesError(RuntimeError):
    """More than the allowed share of the image loads fail (beyond chance)."""


def bernoulli_kl(share: float, limit: float) -> float:
    """KL(share || limit) of two Bernoulli laws, in nats (``inf`` if ``limit`` is 0 < share)."""
    if share <= limit:
        return 0.0
    if limit == 0.0:
        return math.inf
    kl = share * math.log(share / limit)
    if share < 1.0:
        kl += (1.0 - share) * math.log((1.0 - share) / (1.0 - limit))
    return kl


def share_exceeds(failures: int, loads: int, max_bad_share: float, false_stop_prob: float) -> bool:
    """Whether ``failures`` of ``loads`` show a failure probability above ``max_bad_share``.

    True when ``loads * KL(failures / loads || max_bad_share) >= log(loads (loads + 1) /
    false_stop_prob)``. By Chernoff's bound, loads that fail independently with probability
    p <= ``max_bad_share`` reach this at load n with probability <= false_stop_prob /
    (n (n + 1)), so checking after every load stops such a stream with probability at most
    ``false_stop_prob`` over any number of loads (the sum over n). Files drawn without
    replacement (a shuffled epoch) fluctuate less, so the bound holds for them too.
    """
    if loads < 1 or failures <= max_bad_share * loads:
        return False
    evidence = loads * bernoulli_kl(failures / loads, max_bad_share)
    return evidence >= math.log(loads * (loads + 1) / false_stop_prob)


@TRANSFORMS.register_module()
class LoadImageFromFileOrSkip(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` that returns ``None`` for an unreadable file.

    A missing, truncated or non-image file makes mmcv's loader raise (``AssertionError:
    failed to load image``); here it costs a warning and the sample: mmengine's
    ``BaseDataset`` (training mode) refetches another index when the pipeline returns
    ``None``. Each bad path is logged once per process (each dataloader worker is one) with
    the running count ``<bad> of <loads> loads failed``.

    A wrong folder must not train on nothing, and a few bad files must not stop a run: the
    loads of a process stop with :class:`UnreadableImagesError` once their failures show a
    failure probability above ``max_bad_share`` beyond chance (:func:`share_exceeds`: a
    process whose loads fail with probability <= ``max_bad_share`` stops with probability
    <= ``false_stop_prob``, however long it runs). Each process judges its own loads: the
    sampler shuffles, so every worker of every rank draws from the same files and its share
    estimates the run's, with no counts to pass between workers and ranks (mmengine's hooks
    run in the main process, the loads in the workers). A plain "share > limit after k
    loads" rule fires on noise (docs/training.md, "Unreadable files").

    Args:
        max_bad_share: Largest tolerated failure probability of a load, in [0, 1); 0 stops
            at the first failure.
        false_stop_prob: Largest chance, per process, to stop loads whose failure
            probability is ``max_bad_share``, in (0, 1).
        **kwargs: ``LoadImageFromFile``'s arguments (``ignore_empty`` is implied).
    """

    def __init__(self, max_bad_share: float = 0.1, false_stop_prob: float = 1e-6, **kwargs) -> None:
        if 'ignore_empty' in kwargs:
            raise ValueError(
                'LoadImageFromFileOrSkip always skips unreadable files; drop ignore_empty'
            )
        for name, value, low_closed in (
            ('max_bad_share', max_bad_share, True),
            ('false_stop_prob', false_stop_prob, False),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (0 <= value < 1 if low_closed else 0 < value < 1)
            ):
                interval = '[0, 1)' if low_closed else '(0, 1)'
                raise ValueError(f'{name} must be a number in {interval}, got {value!r}')
        super().__init__(**kwargs)
        self.max_bad_share = float(max_bad_share)
        self.false_stop_prob = float(false_stop_prob)
        self.loads = 0
        self.failures = 0
        self.bad_paths: Set[str] = set()

    def _load(self, results: dict) -> Tuple[Optional[dict], Optional[str]]:
        """mmcv's load: ``(results, None)``, or ``(None, error)`` for an unreadable file."""
        try:
            loaded = super().transform(results)
        except Exception as exc:  # mmcv raises AssertionError, OSError, cv2/PIL errors
            return None, f'{type(exc).__name__}: ' + ' '.join(str(exc).split())
        return (loaded, None) if loaded is not None else (None, 'no image')

    def transform(self, results: dict) -> Optional[dict]:
        self.loads += 1
        loaded, error = self._load(results)
        if loaded is None:
            self.failures += 1
            self._warn(str(results.get('img_path')), error)
        if share_exceeds(self.failures, self.loads, self.max_bad_share, self.false_stop_prob):
            shown = ', '.join(sorted(self.bad_paths)[:5])
            raise UnreadableImagesError(
                f'{self.failures} of {self.loads} image loads failed in this process '
                f'({self.failures / self.loads:.0%}, more than max_bad_share='
                f'{self.max_bad_share:g} beyond chance); {len(self.bad_paths)} unreadable '
                f'files, e.g. {shown}. Check the data folder, or raise max_bad_share of '
                'LoadImageFromFileOrSkip'
            )
        return loaded

    def _warn(self, path: str, error: str) -> None:
        if path in self.bad_paths:
            return
        self.bad_paths.add(path)
        print_log(
            f'skipping unreadable image {path} ({error}); {self.failures} of {self.loads} '
            f'loads failed in this process, {len(self.bad_paths)} distinct files',
            logger='current',
            level=logging.WARNING,
        )

    def __repr__(self) -> str:
        return (
            f'{super().__repr__()[:-1]}, max_bad_share={self.max_bad_share}, '
            f'false_stop_prob={self.false_stop_prob})'
        )
