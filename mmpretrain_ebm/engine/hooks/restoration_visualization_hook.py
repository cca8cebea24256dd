"""Draw restoration chains of a fixed batch during pretraining."""

import logging
import os.path as osp
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmpretrain.registry import DATASETS, HOOKS

from ...datasets.loading import LoadImageFromFileOrSkip
from ...visualization import (
    draw_curves,
    draw_restoration_chains,
    find_corruptions,
    find_crop_size,
    mean_psnr,
    restoration_chains,
)

#: Per-iteration training scalars plotted by the curves figure (and mmengine's logger).
CURVE_KEYS = ('loss', 'alpha')
CURVE_PREFIX = 'loss_step'
CURVES_FILE = 'training_curves.png'


def _check_int(value, what: str, low: int, none_allowed: bool = False) -> None:
    """Refuse anything but an int >= ``low`` (bools included), naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        allowed = f'an int >= {low}' + (' or None' if none_allowed else '')
        raise ValueError(f'{what} must be {allowed}, got {value!r}')


@HOOKS.register_module()
class RestorationVisualizationHook(Hook):
    """Every ``interval`` training iterations, restore a fixed batch and draw the chains.

    The fixed batch is ``num_images`` images of ``dataset`` (evenly spaced indices; an
    unreadable file is skipped with a warning for the next index, at most ``max_scanned``
    files are tried), each
    corrupted once by every corruption of the training pipeline (a ``MixedCorruption``
    contributes each of its parts), with a fixed seed: the same corrupted inputs at every
    drawing, so the pictures show the model improving. Each drawing goes to the runner's
    visualizer under ``name`` (``LocalVisBackend`` writes ``vis_data/vis_image/<name>_<iter>
    .png``, ``TensorboardVisBackend`` an image summary): one row per (corruption, image),
    columns corrupted, step 1..N, clean, each labelled with its PSNR. The mean PSNRs go to
    the visualizer as scalars ``<name>/<corruption>/psnr_{corrupted,step1,..}`` and to the
    log. With ``curves=True`` a figure of the per-iteration ``loss``, ``loss_step{n}`` and
    ``alpha`` goes in as ``training_curves`` (mmengine's ``LoggerHook`` already sends these
    scalars to every backend; the figure shows them with the local backend too).

    Drawings happen as the first iteration starts (after hooks of higher priority, e.g.
    ``InitialStepSizeHook``, set alpha), every ``interval`` iterations and after the last
    one; the last is also written to ``<work_dir>/<name>.png`` (and the curves to
    ``<work_dir>/training_curves.png``). Only the main process draws. Several hooks with
    different names can watch different images, e.g. training and held-out ones.

    Args:
        interval: Draw every this many training iterations.
        num_images: Images in the fixed batch.
        dataset: Dataset config to take the images from (e.g. a held-out folder); default:
            the training dataset.
        corruptions: Corruption transform configs to show; default: those of the training
            pipeline.
        img_size: Square side the images are resized and center-cropped to; default: the
            training pipeline's crop size.
        seed: Seed of the corruptions of the fixed batch.
        name: Name of the drawings, of the PSNR scalars and of the final PNG.
        curves: Also draw the training curves.
        max_scanned: At most this many files are tried for the fixed batch (unreadable ones
            are skipped); none readable among them is an error.
        min_gain: Each corruption's label gives its mean gain (dB, step N over x~0) and a
            line under the title names those below ``min_gain`` (not visibly restored, as
            ``tools/analysis/restoration_summary.py`` prints); None: neither.
    """

    priority = 'LOW'

    def __init__(
        self,
        interval: int = 1000,
        num_images: int = 4,
        dataset: Optional[dict] = None,
        corruptions: Optional[Sequence[dict]] = None,
        img_size: Optional[int] = None,
        seed: int = 0,
        name: str = 'restoration',
        curves: bool = True,
        max_scanned: int = 64,
        min_gain: Optional[float] = 1.0,
    ) -> None:
        _check_int(interval, 'interval', low=1)
        _check_int(num_images, 'num_images', low=1)
        if img_size is not None:
            _check_int(img_size, 'img_size', low=1, none_allowed=True)
        _check_int(seed, 'seed', low=0)
        _check_int(max_scanned, 'max_scanned', low=1)
        if corruptions is not None and (
            not isinstance(corruptions, (list, tuple))
            or not corruptions
            or not all(isinstance(c, dict) for c in corruptions)
        ):
            raise ValueError(
                "corruptions must be None (use the training pipeline's) or a "
                f'non-empty list of corruption config dicts, got {corruptions!r}'
            )
        if dataset is not None and not isinstance(dataset, dict):
            raise ValueError(f'dataset must be a dataset config dict or None, got {dataset!r}')
        if not isinstance(name, str) or not name or '/' in name or '\\' in name:
            raise ValueError(
                'name must be a non-empty string without path separators (it '
                f'names the PNG in the work directory), got {name!r}'
            )
        if not isinstance(curves, bool):
            raise ValueError(f'curves must be True or False, got {curves!r}')
        if min_gain is not None and (
            isinstance(min_gain, bool) or not isinstance(min_gain, (int, float))
        ):
            raise ValueError(f'min_gain must be a number of dB or None, got {min_gain!r}')
        self.interval = interval
        self.num_images = num_images
        self.dataset_cfg = dataset
        self.corruptions = [dict(cfg) for cfg in corruptions] if corruptions else None
        self.img_size = img_size
        self.seed = seed
        self.name = name
        self.curves = curves
        self.max_scanned = max_scanned
        self.min_gain = min_gain
        self.image_paths: List[str] = []
        self._last_step = -1
        self._last_image: Optional[np.ndarray] = None

    # ------------------------------------------------------------------ set-up
    def before_train(self, runner: Runner) -> None:
        """Fix the images, corruptions and size from the config."""
        pipeline = runner.cfg.train_dataloader.dataset.get('pipeline', [])
        if self.corruptions is None:
            self.corruptions = find_corruptions(pipeline)
        if self.img_size is None:
            self.img_size = find_crop_size(pipeline)
        dataset = (
            DATASETS.build(dict(self.dataset_cfg, pipeline=[]))
            if self.dataset_cfg is not None
            else runner.train_dataloader.dataset
        )
        self.image_paths = self._pick_images(dataset)

    def _pick_images(self, dataset) -> List[str]:
        """``num_images`` readable image paths of ``dataset``, evenly spaced: an unreadable
        file is skipped with a warning for the next index. At most ``max_scanned`` files are
        tried in all; fewer readable images than asked cost a warning, none an error.

        The training loader's stop rule (a share of failed loads) is not applied: it assumes
        shuffled, independent loads, and this scan is in order, so a few unreadable files
        that sort first (macOS's ``._name.jpg``) would look like a folder of junk.
        """
        size = len(dataset)
        if size == 0:
            raise ValueError('the dataset for restoration chains is empty')
        loader = LoadImageFromFileOrSkip()
        starts = np.linspace(0, size - 1, min(self.num_images, size)).round().astype(int)
        paths: List[str] = []
        tried: List[str] = []
        tried_indices = set()
        for start in starts:
            for index in (int(start + offset) % size for offset in range(size)):
                if len(tried) >= self.max_scanned:
                    break
                if index in tried_indices:
                    continue
                tried_indices.add(index)
                path = self._image_path(dataset, index)
                tried.append(path)
                _, error = loader._load(dict(img_path=path))  # no stop rule: see above
                if error is None:
                    paths.append(path)
                    break
                print_log(
                    f'skipping unreadable image {path} ({error}) for the fixed images of '
                    f'{self.name}',
                    logger='current',
                    level=logging.WARNING,
                )
        unreadable = len(tried) - len(paths)
        if not paths:
            raise ValueError(
                f'none of the {len(tried)} images scanned of the dataset ({size} images, at '
                f'most max_scanned={self.max_scanned} scanned) could be read, e.g. {tried[0]}'
            )
        if len(paths) < len(starts):
            print_log(
                f'{self.name}: {len(paths)} fixed images instead of {len(starts)}: '
                f'{unreadable} of the {len(tried)} files scanned (max_scanned='
                f'{self.max_scanned}) could not be read',
                logger='current',
                level=logging.WARNING,
            )
        return paths

    @staticmethod
    def _image_path(dataset, index: int) -> str:
        info = dataset.get_data_info(index)
        if 'img_path' not in info:
            raise KeyError(
                f'data info {index} of {type(dataset).__name__} has no img_path '
                f'(keys: {sorted(info)})'
            )
        return info['img_path']

    # ------------------------------------------------------------------ drawing
    def before_train_iter(self, runner: Runner, batch_idx: int, data_batch=None) -> None:
        """Draw the starting state (iteration 0, or the one resumed from) once, here rather
        than in ``before_train``: hooks of higher priority, e.g. ``InitialStepSizeHook``, have
        set alpha from the first batch by then."""
        if self._last_step < 0:
            self._draw(runner, step=runner.iter)

    def after_train_iter(
        self, runner: Runner, batch_idx: int, data_batch=None, outputs=None
    ) -> None:
        if self.every_n_train_iters(runner, self.interval):
            self._draw(runner, step=runner.iter + 1)

    def after_train(self, runner: Runner) -> None:
        """Draw the final state (unless just drawn) and write the figures to work_dir."""
        if self._last_step != runner.iter:
            self._draw(runner, step=runner.iter)
        if not is_main_process():
            return
        self._save(self._last_image, osp.join(runner.work_dir, f'{self.name}.png'), runner)
        curves = self._curves(runner) if self.curves else None
        if curves:
            self._save(draw_curves(curves), osp.join(runner.work_dir, CURVES_FILE), runner)

    def _draw(self, runner: Runner, step: int) -> None:
        """Restore the fixed batch with the current weights; ``step``: iterations done."""
        self._last_step = step
        if not is_main_process():
            return
        chains = restoration_chains(
            runner.model, self.image_paths, self.corruptions, self.img_size, self.seed
        )
        image = draw_restoration_chains(
            chains, title=f'{self.name}, iteration {step}', min_gain=self.min_gain
        )
        runner.visualizer.add_image(self.name, image, step=step)
        psnr = mean_psnr(chains)
        runner.visualizer.add_scalars({f'{self.name}/{k}': v for k, v in psnr.items()}, step=step)
        runner.logger.info(
            '%s PSNR (dB) at iteration %d: %s',
            self.name,
            step,
            ', '.join(f'{k} {v:.2f}' for k, v in psnr.items()),
        )
        curves = self._curves(runner) if self.curves else None
        if curves:
            runner.visualizer.add_image('training_curves', draw_curves(curves), step=step)
        self._last_image = image

    @staticmethod
    def _curves(runner: Runner) -> Dict[str, np.ndarray]:
        """Per-iteration ``loss``, ``loss_step{n}`` and ``alpha`` recorded so far."""
        curves = {}
        for key, buffer in runner.message_hub.log_scalars.items():
            name = key.split('/', 1)[-1]
            if key.startswith('train/') and (name in CURVE_KEYS or name.startswith(CURVE_PREFIX)):
                curves[name] = buffer.data[0]
        return dict(sorted(curves.items()))

    @staticmethod
    def _save(image: np.ndarray, path: str, runner: Runner) -> None:
        if not cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise OSError(f'could not write {path}')
        runner.logger.info('wrote %s', path)
