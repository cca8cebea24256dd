"""Image loading that skips unreadable files instead of stopping the run."""

import logging
from typing import Optional, Set

from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log
from mmpretrain.registry import TRANSFORMS


class UnreadableImagesError(RuntimeError):
    """More than the allowed share of the images loaded so far could not be read."""


@TRANSFORMS.register_module()
class LoadImageFromFileOrSkip(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` that returns ``None`` for an unreadable file.

    A missing, truncated or non-image file makes mmcv's loader raise (``AssertionError:
    failed to load image``); here it costs a warning and the sample: mmengine's
    ``BaseDataset`` (training mode) refetches another index when the pipeline returns
    ``None``. Each bad path is logged once per process (each dataloader worker is one) with
    the running count ``<bad> of <loads> loads failed``. Once at least ``min_loads`` loads
    happened in a process, a failed share above ``max_bad_share`` raises
    :class:`UnreadableImagesError`, so a wrong folder does not train on nothing.

    Args:
        max_bad_share: Largest tolerated share of failed loads, in [0, 1).
        min_loads: Loads before the share is judged (>= 1).
        **kwargs: ``LoadImageFromFile``'s arguments (``ignore_empty`` is implied).
    """

    def __init__(self, max_bad_share: float = 0.1, min_loads: int = 50, **kwargs) -> None:
        if 'ignore_empty' in kwargs:
            raise ValueError(
                'LoadImageFromFileOrSkip always skips unreadable files; drop ignore_empty'
            )
        if (
            isinstance(max_bad_share, bool)
            or not isinstance(max_bad_share, (int, float))
            or not 0 <= max_bad_share < 1
        ):
            raise ValueError(f'max_bad_share must be a number in [0, 1), got {max_bad_share!r}')
        if isinstance(min_loads, bool) or not isinstance(min_loads, int) or min_loads < 1:
            raise ValueError(f'min_loads must be an int >= 1, got {min_loads!r}')
        super().__init__(**kwargs)
        self.max_bad_share = float(max_bad_share)
        self.min_loads = min_loads
        self.loads = 0
        self.failures = 0
        self.bad_paths: Set[str] = set()

    def transform(self, results: dict) -> Optional[dict]:
        self.loads += 1
        try:
            loaded = super().transform(results)
            error = None if loaded is not None else 'no image'
        except Exception as exc:  # mmcv raises AssertionError, OSError, cv2/PIL errors
            loaded, error = None, f'{type(exc).__name__}: ' + ' '.join(str(exc).split())
        if loaded is not None:
            self._check_share()
            return loaded
        self.failures += 1
        path = str(results.get('img_path'))
        if path not in self.bad_paths:
            self.bad_paths.add(path)
            print_log(
                f'skipping unreadable image {path} ({error}); {self.failures} of '
                f'{self.loads} loads failed in this process, {len(self.bad_paths)} distinct '
                'files',
                logger='current',
                level=logging.WARNING,
            )
        self._check_share()
        return None

    def _check_share(self) -> None:
        if self.loads >= self.min_loads and self.failures > self.max_bad_share * self.loads:
            shown = ', '.join(sorted(self.bad_paths)[:5])
            raise UnreadableImagesError(
                f'{self.failures} of {self.loads} image loads failed '
                f'({self.failures / self.loads:.0%} > max_bad_share={self.max_bad_share:g}); '
                f'{len(self.bad_paths)} unreadable files, e.g. {shown}. Check the data '
                'folder, or raise max_bad_share of LoadImageFromFileOrSkip'
            )

    def __repr__(self) -> str:
        return (
            f'{super().__repr__()[:-1]}, max_bad_share={self.max_bad_share}, '
            f'min_loads={self.min_loads})'
        )
