"""What every corruption transform shares: the two-view output, normalization, validation."""

from abc import abstractmethod
from typing import Sequence

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

# The normalization of mmpretrain's ImageNet configs, in RGB order (0..255 pixel units).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
CHANNEL_ORDERS = ('bgr', 'rgb')


def contiguous_image(img: np.ndarray) -> np.ndarray:
    """``img`` as a C-contiguous array, fast for the flipped views ``RandomFlip`` leaves.

    ``np.flip`` returns a negative-stride view that numpy copies or converts far more slowly
    than a contiguous array; ``cv2.flip`` of the un-flipped (contiguous) memory gives the
    same array at once.
    """
    if img.flags.c_contiguous:
        return img
    flip_rows, flip_cols = img.strides[0] < 0, img.strides[1] < 0
    unflipped = img[:: -1 if flip_rows else 1, :: -1 if flip_cols else 1]
    if (flip_rows or flip_cols) and unflipped.flags.c_contiguous:
        return cv2.flip(
            unflipped,
            {(True, False): 0, (False, True): 1, (True, True): -1}[(flip_rows, flip_cols)],
        )
    return np.ascontiguousarray(img)


def _channel_values(values: Sequence[float], what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape not in ((3,), (1,)) or not np.all(np.isfinite(array)):
        raise ValueError(
            f'{what} must be three finite numbers (R, G, B) or one (grey), got {values!r}'
        )
    return array


class BaseCorruption(BaseTransform):
    """Base of the corruption transforms: keep the clean image and add its corrupted view.

    The corruption function of the paper (Sec. 2.2, x~0 = corrupt(x)) is applied per image in
    the data pipeline, after ``RandomResizedCrop``/``RandomFlip`` and before ``PackInputs``.

    **Required keys:** ``img`` (HxWx3 array, e.g. uint8 from ``LoadImageFromFile``; for grey
    images, with one-value ``mean`` and ``std``, HxWx1 or HxW, which becomes HxWx1).

    **Modified keys:** ``img`` becomes the two-view list ``[clean, corrupted]``, the carrier
    MMPretrain's multi-view algorithms use: ``PackInputs`` turns it into two CxHxW tensors and
    ``SelfSupDataPreprocessor`` normalizes both views alike. ``clean`` is the input array
    itself, untouched; ``corrupted`` is float32 HxWx3 in the same pixel units (0..255 scale)
    and channel order, so a batch stacks whatever mix of corruptions produced it.

    **Added keys:** ``corruption``, the short name of the corruption (e.g. ``'grid_mask'``);
    list it in ``PackInputs(meta_keys=...)`` to find it in ``data_sample.corruption``.

    Randomness comes from numpy's global RNG, which mmengine seeds in the main process and in
    every dataloader worker: the same seed gives the same corruptions.

    Args:
        mean: Per-channel mean in RGB order, exactly as given to the data preprocessor
            (one value for grey images). Masked pixels take this value, which normalization
            maps to 0.
        std: Per-channel std in RGB order, as given to the data preprocessor. Denoising adds
            its noise in the normalized space ``(x - mean) / std``.
        channel_order: Channel order of ``results['img']``: ``'bgr'`` (what
            ``LoadImageFromFile`` gives, default) or ``'rgb'``. ``mean`` and ``std`` are
            reordered to match. Corruptions that need neither statistic (super-resolution,
            colorization) still validate them, so every corruption accepts one shared
            normalization config.
    """

    #: Short name written to ``results['corruption']``.
    name: str = ''

    def __init__(
        self,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        channel_order: str = 'bgr',
    ) -> None:
        if channel_order not in CHANNEL_ORDERS:
            raise ValueError(
                f'channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}'
            )
        mean_rgb = _channel_values(mean, 'mean')
        std_rgb = _channel_values(std, 'std')
        if mean_rgb.shape != std_rgb.shape:
            raise ValueError(
                f'mean and std must have as many values, one per channel, got {mean!r} and {std!r}'
            )
        if np.any(std_rgb <= 0):
            raise ValueError(f'std must be positive, got {std!r}')
        order = slice(None) if channel_order == 'rgb' else slice(None, None, -1)
        self.channel_order = channel_order
        self.mean_rgb = tuple(mean_rgb.tolist())
        self.std_rgb = tuple(std_rgb.tolist())
        # In channel_order, float32 rounded from float64 exactly as torch.tensor(mean) rounds it
        # in the data preprocessor, so that a masked pixel normalizes to exactly 0.
        self.mean = mean_rgb[order].astype(np.float32)
        self.std = std_rgb[order].astype(np.float32)
        self.channels = len(self.mean)

    def transform(self, results: dict) -> dict:
        """Replace ``results['img']`` by ``[clean, corrupted]`` and set ``'corruption'``."""
        img = results['img']
        self._check_image(img)
        if img.ndim == 2:
            img = img[..., None]
        results['img'] = [img, self.corrupt(contiguous_image(img))]
        results['corruption'] = self.name
        return results

    @abstractmethod
    def corrupt(self, img: np.ndarray) -> np.ndarray:
        """Return the corrupted view of ``img`` (HxWxC) as a new float32 HxWxC array."""

    def _check_image(self, img) -> None:
        if isinstance(img, (list, tuple)):
            raise TypeError(
                f'{type(self).__name__} expects one image in results["img"], '
                f'got a list of {len(img)} views: apply one corruption only'
            )
        grey = self.channels == 1 and isinstance(img, np.ndarray) and img.ndim == 2
        if not isinstance(img, np.ndarray) or not (
            grey or (img.ndim == 3 and img.shape[2] == self.channels)
        ):
            shape = getattr(img, 'shape', type(img).__name__)
            kind = (
                'an HxWx1 or HxW grey' if self.channels == 1 else f'an HxWx3 {self.channel_order}'
            )
            raise ValueError(
                f'{type(self).__name__} expects {kind} image, got {shape} (its mean and std '
                f'have {self.channels} value(s))'
            )

    def _fill(self, img: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """float32 copy of ``img`` with the pixels where ``mask`` (HxW bool) is set to mean."""
        out = img.astype(np.float32)
        if self.channels == 1:  # cv2 would see an HxWx1 array as HxW and copy into a new one
            out[mask] = self.mean
            return out
        # cv2.copyTo is much faster than numpy's boolean assignment out[mask] = self.mean.
        cv2.copyTo(self._mean_image(*img.shape[:2]), mask.view(np.uint8), out)
        return out

    def _mean_image(self, height: int, width: int) -> np.ndarray:
        """A float32 HxWxC image of the mean, cached for the last size asked for."""
        cached = getattr(self, '_cached_mean_image', None)
        if cached is None or cached.shape[:2] != (height, width):
            cached = np.empty((height, width, self.channels), np.float32)
            cached[...] = self.mean
            cached.flags.writeable = False
            self._cached_mean_image = cached
        return cached

    def __repr__(self) -> str:
        fields = ', '.join(f'{key}={value!r}' for key, value in self._repr_fields().items())
        return f'{type(self).__name__}({fields})'

    def _repr_fields(self) -> dict:
        """The constructor arguments shown by ``repr``; subclasses add theirs first."""
        return dict(mean=self.mean_rgb, std=self.std_rgb, channel_order=self.channel_order)
