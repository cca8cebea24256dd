"""Masked-image-modeling corruptions of the paper (Sec. 3.1, App. A.3, Table 1, Figure 3)."""

import math
from numbers import Integral, Real
from typing import Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms.utils import cache_randomness
from mmpretrain.registry import TRANSFORMS

from .base import IMAGENET_MEAN, IMAGENET_STD, BaseCorruption


def _check_ratio(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < 1:
        raise ValueError(f'{what} must be a number in the open interval (0, 1), got {value!r}')
    return float(value)


def _check_positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f'{what} must be a positive integer, got {value!r}')
    return int(value)


def _check_range(values, what: str) -> Tuple[float, float]:
    try:
        low, high = (float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f'{what} must be a pair (low, high), got {values!r}') from None
    if not 0 < low <= high or not math.isfinite(high):
        raise ValueError(f'{what} must satisfy 0 < low <= high < inf, got {values!r}')
    return low, high


@TRANSFORMS.register_module()
class GridMaskCorruption(BaseCorruption):
    """Gridded masking, the paper's *Gridded (c)* (App. A.3, Table 1).

    The image is divided into square ``cell_size`` cells on a grid anchored at the top-left
    pixel, and ``round(mask_ratio * num_cells)`` cells chosen uniformly without replacement
    take the mean (0 after normalization). With ``cell_size`` equal to the ViT patch size
    (16 for ViT-B/16) and ``RandomResizedCrop`` to a multiple of it, the mask sits exactly on
    the patch grid, as the paper's *Gridded (16)* needs for its comparison with MAE.

    When the image side is not a multiple of ``cell_size`` (e.g. cells of 24 px on 224-px
    crops: 9 full cells and one of 8 px per side) the last row and column of cells are cut
    at the border and count as cells; the masked *cell* count is then still exact and the
    masked *pixel* fraction equals ``mask_ratio`` in expectation rather than per image.

    Args:
        cell_size: Side of a cell in pixels; must not exceed either image side.
        mask_ratio: Fraction of cells masked, in (0, 1). Default 0.7, the best ratio of
            every gridded row of Table 1.
        mean, std, channel_order: see :class:`BaseCorruption`.
    """

    name = 'grid_mask'

    def __init__(
        self,
        cell_size: int = 16,
        mask_ratio: float = 0.7,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        channel_order: str = 'bgr',
    ) -> None:
        super().__init__(mean=mean, std=std, channel_order=channel_order)
        self.cell_size = _check_positive_int(cell_size, 'cell_size')
        self.mask_ratio = _check_ratio(mask_ratio, 'mask_ratio')

    def corrupt(self, img: np.ndarray) -> np.ndarray:
        return self._fill(img, self.sample_mask(*img.shape[:2]))

    def sample_mask(self, height: int, width: int) -> np.ndarray:
        """A random HxW bool mask (True = masked) made of whole grid cells."""
        cell = self.cell_size
        if cell > height or cell > width:
            raise ValueError(
                f'cell_size={cell} does not fit a {height}x{width} image: '
                f'it must not exceed min(height, width)={min(height, width)}'
            )
        cells = self._sample_cells(-(-height // cell), -(-width // cell))
        return cells.repeat(cell, axis=0).repeat(cell, axis=1)[:height, :width]

    @cache_randomness
    def _sample_cells(self, rows: int, cols: int) -> np.ndarray:
        num_cells = rows * cols
        masked = np.zeros(num_cells, dtype=bool)
        masked[np.random.permutation(num_cells)[: round(self.mask_ratio * num_cells)]] = True
        return masked.reshape(rows, cols)

    def _repr_fields(self) -> dict:
        return dict(cell_size=self.cell_size, mask_ratio=self.mask_ratio, **super()._repr_fields())


#: The paper's random masking presets (App. A.3). See RandomBoxMaskCorruption for the units.
RANDOM_BOX_PRESETS = {
    'small': dict(num_boxes=75, size_range=(0.01, 0.025), size_unit='image_area'),
    'large': dict(num_boxes=25, size_range=(0.5, 2.0), size_unit='image_area_per_box'),
}
SIZE_UNITS = ('image_area', 'image_area_per_box')


@TRANSFORMS.register_module()
class RandomBoxMaskCorruption(BaseCorruption):
    """Random box masking, the paper's *Random small* / *Random large* (App. A.3, Table 1).

    ``num_boxes`` boxes are drawn independently; each takes the mean (0 after
    normalization). A box's *normalized size* s ~ U(size_range) is its area relative to a
    reference area; its aspect ratio (height / width) is log-uniform in
    ``aspect_ratio_range``; its sides are rounded to whole pixels and cut to the image; its
    top-left corner is uniform over the positions where it lies inside the image.

    The paper gives no unit for the normalized size, and no single unit makes both of its
    presets sensible: with the same reference area, the 75 small boxes (mean size 0.0175)
    total 1/24 of the area of the 25 large ones (mean size 1.25), so one preset always masks
    almost nothing or the whole image. Each preset therefore names its unit:

    - ``'image_area'``: box area = s * H * W (the ``scale`` of Random Erasing).
      *Random small* (75 boxes, s ~ U(0.01, 0.025)): each box covers 1-2.5 % of the image
      (a 22-35 px square at 224 px).
    - ``'image_area_per_box'``: box area = s * H * W / num_boxes, so that s = 1 means the
      boxes' total area equals the image's, and 2.0 > 1 is meaningful.
      *Random large* (25 boxes, s ~ U(0.5, 2.0)): each box covers 2-8 % of the image
      (a 32-63 px square at 224 px).

    Both presets mask about two thirds of the image, near the 70 % that is best for gridded
    masking in Table 1 (docs/corruptions.md gives the measured fractions, which
    ``tests/test_datasets/test_corruption_masking.py`` checks); the other unit would mask
    under 2 % (small) or all of the image (large).

    Args:
        preset: ``'small'`` or ``'large'``; or None to give ``num_boxes`` and ``size_range``.
        num_boxes: Number of boxes per image (explicit form only).
        size_range: (low, high) of the uniform normalized size (explicit form only).
        size_unit: ``'image_area'`` (default) or ``'image_area_per_box'`` (explicit form).
        aspect_ratio_range: (low, high) of the log-uniform height/width ratio. The paper says
            only "random aspect ratio"; the default (0.3, 1/0.3) is Random Erasing's.
        mean, std, channel_order: see :class:`BaseCorruption`.
    """

    name = 'random_box_mask'

    def __init__(
        self,
        preset: Optional[str] = None,
        num_boxes: Optional[int] = None,
        size_range: Optional[Tuple[float, float]] = None,
        size_unit: Optional[str] = None,
        aspect_ratio_range: Tuple[float, float] = (0.3, 1 / 0.3),
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        channel_order: str = 'bgr',
    ) -> None:
        super().__init__(mean=mean, std=std, channel_order=channel_order)
        explicit = dict(num_boxes=num_boxes, size_range=size_range, size_unit=size_unit)
        given = sorted(key for key, value in explicit.items() if value is not None)
        if preset is not None:
            if preset not in RANDOM_BOX_PRESETS:
                raise ValueError(
                    f'preset must be one of {sorted(RANDOM_BOX_PRESETS)} or None, got {preset!r}'
                )
            if given:
                raise ValueError(
                    f'give either preset={preset!r} or explicit '
                    f'num_boxes/size_range/size_unit, not both (got {given})'
                )
            explicit = RANDOM_BOX_PRESETS[preset]
        elif num_boxes is None or size_range is None:
            raise ValueError(
                f'give preset (one of {sorted(RANDOM_BOX_PRESETS)}) or both '
                f'num_boxes and size_range (got {given or "neither"})'
            )
        size_unit = explicit['size_unit'] or 'image_area'
        if size_unit not in SIZE_UNITS:
            raise ValueError(f'size_unit must be one of {SIZE_UNITS}, got {size_unit!r}')
        self.preset = preset
        self.num_boxes = _check_positive_int(explicit['num_boxes'], 'num_boxes')
        self.size_range = _check_range(explicit['size_range'], 'size_range')
        self.size_unit = size_unit
        largest = 1.0 if size_unit == 'image_area' else float(self.num_boxes)
        if self.size_range[1] > largest:
            raise ValueError(
                f'size_range {tuple(self.size_range)} in unit {size_unit!r} allows boxes larger '
                f'than the image (the largest normalized size is {largest:g}): such a box is '
                'cut to the image and covers most or all of it. Lower the sizes, or use '
                "size_unit='image_area_per_box' for sizes relative to 1/num_boxes of the "
                'image.'
            )
        self.aspect_ratio_range = _check_range(aspect_ratio_range, 'aspect_ratio_range')

    def corrupt(self, img: np.ndarray) -> np.ndarray:
        return self._fill(img, self.sample_mask(*img.shape[:2]))

    def sample_mask(self, height: int, width: int) -> np.ndarray:
        """A random HxW bool mask (True = masked), the union of ``num_boxes`` boxes."""
        top, left, box_h, box_w = self._sample_boxes(height, width)
        rows = np.arange(height)
        cols = np.arange(width)
        in_rows = (rows >= top[:, None]) & (rows < (top + box_h)[:, None])  # (boxes, H)
        in_cols = (cols >= left[:, None]) & (cols < (left + box_w)[:, None])  # (boxes, W)
        # Pixel (y, x) is masked iff some box holds both row y and column x.
        return in_rows.T.astype(np.float32) @ in_cols.astype(np.float32) > 0

    @cache_randomness
    def _sample_boxes(self, height: int, width: int) -> Tuple[np.ndarray, ...]:
        """Top, left, height and width (int arrays of ``num_boxes``) of the random boxes."""
        u_size, u_aspect, u_top, u_left = np.random.random_sample((4, self.num_boxes))
        low, high = self.size_range
        area = (low + (high - low) * u_size) * (height * width)
        if self.size_unit == 'image_area_per_box':
            area /= self.num_boxes
        log_low, log_high = np.log(self.aspect_ratio_range)
        aspect = np.exp(log_low + (log_high - log_low) * u_aspect)
        box_h = np.clip(np.rint(np.sqrt(area * aspect)), 1, height).astype(np.int64)
        box_w = np.clip(np.rint(np.sqrt(area / aspect)), 1, width).astype(np.int64)
        top = np.floor(u_top * (height - box_h + 1)).astype(np.int64)
        left = np.floor(u_left * (width - box_w + 1)).astype(np.int64)
        return top, left, box_h, box_w

    def _repr_fields(self) -> dict:
        fields = (
            dict(preset=self.preset)
            if self.preset
            else dict(
                num_boxes=self.num_boxes, size_range=self.size_range, size_unit=self.size_unit
            )
        )
        return dict(**fields, aspect_ratio_range=self.aspect_ratio_range, **super()._repr_fields())
