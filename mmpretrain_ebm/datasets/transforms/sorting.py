"""Patch sorting: the pretext task the ICLR 2023 version of the paper names beside masking
and restoration ("masked image modeling, patch sorting, and image restoration").

The paper gives no recipe for it; our reading, as a corruption x~0 = corrupt(x) that the
energy steps must undo like every other: the image is cut into the gridded mask's cells, a
random share of the whole cells is chosen, and their contents are moved among themselves in
one random cycle, so that every chosen cell shows another chosen cell's pixels. Restoring x
from x~0 means putting the patches back in order: sorting them.
"""

from numbers import Integral, Real
from typing import Sequence

import numpy as np
from mmcv.transforms.utils import cache_randomness
from mmpretrain.registry import TRANSFORMS

from .base import IMAGENET_MEAN, IMAGENET_STD, BaseCorruption


@TRANSFORMS.register_module()
class PatchSortingCorruption(BaseCorruption):
    """Permute a random share of the image's grid cells among themselves.

    The grid is :class:`GridMaskCorruption`'s: square ``cell_size`` cells anchored at the
    top-left pixel (with ``cell_size`` the ViT patch size the cells are its patches). Only
    whole cells take part (cells cut at the bottom or right border stay in place).
    ``k = max(2, round(shuffle_ratio * num_cells))`` cells are chosen uniformly without
    replacement and put in a random order c_1..c_k; cell c_(i+1) receives the pixels of c_i
    and c_1 those of c_k (a k-cycle: no chosen cell keeps its own pixels). Pixel values are
    copied unchanged, so the corrupted view holds exactly the clean image's pixels.

    Args:
        cell_size: Side of a cell in pixels; the image must hold at least two whole cells.
        shuffle_ratio: Share of the whole cells that move, in (0, 1].
        mean, std, channel_order: see :class:`BaseCorruption` (validated, not used: nothing
            is filled).
    """

    name = 'patch_sorting'

    def __init__(
        self,
        cell_size: int = 16,
        shuffle_ratio: float = 0.5,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        channel_order: str = 'bgr',
    ) -> None:
        super().__init__(mean=mean, std=std, channel_order=channel_order)
        if isinstance(cell_size, bool) or not isinstance(cell_size, Integral) or cell_size < 1:
            raise ValueError(f'cell_size must be a positive integer, got {cell_size!r}')
        if (
            isinstance(shuffle_ratio, bool)
            or not isinstance(shuffle_ratio, Real)
            or not 0 < shuffle_ratio <= 1
        ):
            raise ValueError(
                f'shuffle_ratio must be a number in the half-open interval (0, 1], '
                f'got {shuffle_ratio!r}'
            )
        self.cell_size = int(cell_size)
        self.shuffle_ratio = float(shuffle_ratio)

    def corrupt(self, img: np.ndarray) -> np.ndarray:
        img = img.reshape(*img.shape[:2], -1)  # a flipped grey view comes back HxW from cv2
        cell = self.cell_size
        rows, cols = img.shape[0] // cell, img.shape[1] // cell
        if rows * cols < 2:
            raise ValueError(
                f'cell_size={cell} leaves {rows * cols} whole cell(s) in a '
                f'{img.shape[0]}x{img.shape[1]} image; patch sorting needs at least 2: '
                f'choose cell_size <= {max(img.shape[0], img.shape[1]) // 2}'
            )
        sources, targets = self.sample_moves(rows * cols)
        out = img.astype(np.float32)
        grid = img[: rows * cell, : cols * cell].reshape(rows, cell, cols, cell, -1)
        cells = grid.transpose(0, 2, 1, 3, 4).reshape(rows * cols, cell, cell, -1)
        for source, target in zip(sources, targets):
            r, c = divmod(int(target), cols)
            out[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = cells[source]
        return out

    @cache_randomness
    def sample_moves(self, num_cells: int):
        """(sources, targets): cell indices (row-major) whose pixels go where; one k-cycle."""
        count = min(num_cells, max(2, round(self.shuffle_ratio * num_cells)))
        order = np.random.permutation(num_cells)[:count]
        return order, np.roll(order, 1)

    def _repr_fields(self) -> dict:
        return dict(
            cell_size=self.cell_size, shuffle_ratio=self.shuffle_ratio, **super()._repr_fields()
        )
