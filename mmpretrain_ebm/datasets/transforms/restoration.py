"""Image-restoration corruptions of the paper (Sec. 3.1, App. A.2, Table 2, Figure 4)."""

import math
from functools import lru_cache
from numbers import Integral
from typing import Sequence, Tuple

import cv2
import numpy as np
import torch
from mmcv.transforms.utils import cache_randomness
from mmpretrain.registry import TRANSFORMS

from .base import IMAGENET_MEAN, IMAGENET_STD, BaseCorruption


def _keys_cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel (a = -0.5: MATLAB ``imresize`` and PIL bicubic)."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


@lru_cache(maxsize=64)
def bicubic_downsample_matrix(length: int, factor: int) -> np.ndarray:
    """Weights (ceil(length / factor) x length, float32) of antialiased bicubic downsampling.

    Output sample i summarizes input block [i * factor, (i + 1) * factor): the cubic kernel,
    stretched by ``factor`` (support 4 * factor input pixels), is centred on the block and
    its weights, cut at the border, are renormalized to sum to 1. For lengths divisible by
    ``factor`` this is PIL's and ``torch.nn.functional.interpolate(mode='bicubic',
    antialias=True)``'s downsampling; a trailing partial block gets its own sample.
    """
    centers = (np.arange(-(-length // factor)) + 0.5) * factor
    weights = _keys_cubic((np.arange(length) + 0.5 - centers[:, None]) / factor)
    weights /= weights.sum(axis=1, keepdims=True)
    weights = weights.astype(np.float32)
    weights.flags.writeable = False
    return weights


@TRANSFORMS.register_module()
class SuperResolutionCorruption(BaseCorruption):
    """Super-resolution *SR s x* (App. A.2, Table 2): bicubic downsampling by ``scale``,
    nearest-neighbour upsampling back to the original size.

    Every ``scale`` x ``scale`` block of the output (grid anchored at the top-left pixel) is
    constant and holds the bicubic downsample of the image at that block. Bicubic here is
    the antialiased one of image-restoration benchmarks (MATLAB ``imresize``, PIL, torch's
    ``antialias=True``): the kernel is stretched by ``scale`` so every pixel of the block
    and its neighbourhood contributes. ``cv2.INTER_CUBIC`` is not used because it samples
    only a 4x4 neighbourhood of each block when shrinking (15/16 of the pixels ignored at
    16x), which aliases instead of losing detail. The output is float32, not re-quantized.

    Sides that are not multiples of ``scale`` are allowed (e.g. 24 on 224-px crops, as
    Table 2's "SR 24x" row reads in our copy): the last block row/column is partial and gets
    the bicubic value of that partial block, so the output stays aligned pixel for pixel
    with the clean image.

    Args:
        scale: Integer downsampling factor s >= 1 (1 leaves the image unchanged); must not
            exceed either image side.
        mean, std, channel_order: see :class:`BaseCorruption` (validated, not needed here).
    """

    name = 'super_resolution'

    def __init__(
        self,
        scale: int = 16,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        channel_order: str = 'bgr',
    ) -> None:
        super().__init__(mean=mean, std=std, channel_order=channel_order)
        if isinstance(scale, bool) or not isinstance(scale, Integral) or scale < 1:
            raise ValueError(f'scale must be an integer >= 1, got {scale!r}')
        self.scale = int(scale)

    def downsample(self, img: np.ndarray) -> np.ndarray:
        """Bicubic downsample of HxWxC ``img``: float32 ceil(H/s) x ceil(W/s) x C."""
        height, width = img.shape[:2]
        if self.scale > height or self.scale > width:
            raise ValueError(
                f'scale={self.scale} does not fit a {height}x{width} image: it '
                f'must not exceed min(height, width)={min(height, width)}'
            )
        rows = bicubic_downsample_matrix(height, self.scale)
        cols = bicubic_downsample_matrix(width, self.scale)
        img = img.reshape(height, -1).astype(np.float32, copy=False)
        low = (rows @ img).reshape(len(rows), width, -1)
        return cols @ low  # (h, w, W) @ (h, W, C) -> (h, w, C)

    def corrupt(self, img: np.ndarray) -> np.ndarray:
        height, width = img.shape[:2]
        low = self.downsample(img)
        # Nearest-neighbour upsampling by exactly s: every low-res pixel fills its s x s block
        # (INTER_NEAREST_EXACT maps output x to input floor((x + 0.5) / s) = floor(x / s)).
        up = cv2.resize(
            low,
            (low.shape[1] * self.scale, low.shape[0] * self.scale),
            interpolation=cv2.INTER_NEAREST_EXACT,
        )
        # cv2 drops the channel axis of a one-channel (grey) image: put it back
        return np.ascontiguousarray(up[:height, :width].reshape(height, width, -1))

    def _repr_fields(self) -> dict:
        return dict(scale=self.scale, **super()._repr_fields())


@TRANSFORMS.register_module()
class DenoisingCorruption(BaseCorruption):
    """Denoising (App. A.2, Table 2): x~ = sqrt(g) x_n + sqrt(1 - g) eps in the normalized
    space x_n = (x - mean) / std, with eps ~ N(0, I) and one g ~ U(gamma_range) per image.

    The result is mapped back to pixel units, ``x~ * std + mean``, in float32 without
    clipping or rounding, so that after ``SelfSupDataPreprocessor(mean, std)`` the model
    sees exactly the formula above (up to float32 rounding). ``eps`` is drawn by
    ``torch.randn`` (vectorized, faster than numpy's samplers) from a generator
    seeded by numpy's global RNG, so outputs still follow mmengine's seed.

    Args:
        gamma_range: (low, high) of the uniform signal level g, within [0, 1]. Default
            (0, 1) as in the paper; low == high fixes g.
        mean, std, channel_order: see :class:`BaseCorruption`.
    """

    name = 'denoising'

    def __init__(
        self,
        gamma_range: Tuple[float, float] = (0.0, 1.0),
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        channel_order: str = 'bgr',
    ) -> None:
        super().__init__(mean=mean, std=std, channel_order=channel_order)
        try:
            low, high = (float(v) for v in gamma_range)
        except (TypeError, ValueError):
            raise ValueError(
                f'gamma_range must be a pair (low, high), got {gamma_range!r}'
            ) from None
        if not 0 <= low <= high <= 1:
            raise ValueError(f'gamma_range must satisfy 0 <= low <= high <= 1, got {gamma_range!r}')
        self.gamma_range = (low, high)
        # Reseeded from numpy's global RNG before every draw; kept because creating a
        # generator costs about as much as drawing a 224x224x3 image of noise.
        self._generator = torch.Generator()

    @cache_randomness
    def _sample_noise(self, shape: Tuple[int, ...]) -> Tuple[float, np.ndarray]:
        """The signal level g and the standard normal noise eps (float32, ``shape``)."""
        low, high = self.gamma_range
        gamma = low + (high - low) * np.random.random_sample()
        self._generator.manual_seed(int(np.random.randint(2**63 - 1)))
        return gamma, torch.randn(shape, generator=self._generator).numpy()

    def corrupt(self, img: np.ndarray) -> np.ndarray:
        height, width = img.shape[:2]
        gamma, eps = self._sample_noise(img.shape)
        signal, noise = np.float32(math.sqrt(gamma)), np.float32(math.sqrt(1.0 - gamma))
        # (sqrt(g) (x - m) / s + sqrt(1 - g) eps) s + m
        #   = sqrt(g) x + sqrt(1 - g) s eps + (1 - sqrt(g)) m, on (H, W*3) rows so that
        # numpy's inner loops run over W*3 values, not over 3. eps itself is left intact
        # (cache_random_params may hand the same draw out again).
        mean_row, std_row = np.tile(self.mean, width), np.tile(self.std, width)
        out = eps.reshape(height, width * self.channels) * (noise * std_row)
        out += signal * img.reshape(height, width * self.channels)
        out += (1 - signal) * mean_row
        return out.reshape(img.shape)

    def _repr_fields(self) -> dict:
        return dict(gamma_range=self.gamma_range, **super()._repr_fields())


@TRANSFORMS.register_module()
class ColorizationCorruption(BaseCorruption):
    """Colorization (Sec. 3.1, Table 2): the luma, replicated to three channels.

    Luma is ITU-R BT.601, 0.299 R + 0.587 G + 0.114 B, weighted in ``channel_order``; the
    output is float32 in pixel units (not rounded). Only 3-channel colour images are
    accepted: a grey or 4-channel input raises a ValueError, and so does a one-value (grey)
    ``mean``: a grey image has no colour to restore.

    Args:
        mean, std, channel_order: see :class:`BaseCorruption` (mean and std are validated,
            not needed here).
    """

    name = 'colorization'

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.channels != 3:
            raise ValueError(
                f'ColorizationCorruption needs colour images (three-value mean and std), got '
                f'mean={self.mean_rgb!r}: a grey image has no colour to restore'
            )

    def corrupt(self, img: np.ndarray) -> np.ndarray:
        # OpenCV's float RGB->grey is exactly the BT.601 weighting, several times faster
        # than a numpy dot over the 3-long channel axis.
        to_grey = cv2.COLOR_BGR2GRAY if self.channel_order == 'bgr' else cv2.COLOR_RGB2GRAY
        luma = cv2.cvtColor(img.astype(np.float32, copy=False), to_grey)
        return cv2.merge([luma, luma, luma])
