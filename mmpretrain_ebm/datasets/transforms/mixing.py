"""A per-image random choice among corruptions (the paper's *Mixed*, Sec. 3.2, Table 3)."""

import math
import numbers
from typing import List, Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmpretrain.registry import TRANSFORMS

from .base import BaseCorruption


def registered_corruptions() -> List[str]:
    """Names of the corruption transforms registered in mmpretrain's ``TRANSFORMS``."""
    return sorted(
        name
        for name, cls in TRANSFORMS.module_dict.items()
        if isinstance(cls, type) and issubclass(cls, BaseCorruption)
    )


def _build_corruption(cfg: Union[dict, BaseCorruption]) -> BaseCorruption:
    if isinstance(cfg, BaseCorruption):
        return cfg
    kind = cfg.get('type') if isinstance(cfg, dict) else None
    cls = TRANSFORMS.get(kind) if isinstance(kind, str) else kind
    if not (isinstance(cls, type) and issubclass(cls, BaseCorruption)):
        raise ValueError(
            f'unknown corruption {cfg!r}: each entry of corruptions must be a '
            f'config dict whose type is one of {registered_corruptions()} '
            f'(or such a transform)'
        )
    return TRANSFORMS.build(cfg)


@TRANSFORMS.register_module()
class MixedCorruption(BaseTransform):
    """Apply one corruption per image, chosen at random from a list (*Ours Mixed*, Table 3).

    The paper samples uniformly from masking, super-resolution, denoising and colorization;
    ``weights`` makes the choice non-uniform. The chosen transform sets ``results['img']`` to
    ``[clean, corrupted]`` and ``results['corruption']`` to its own name (e.g.
    ``'denoising'``), so a batch can be split by corruption downstream. All corruptions must
    share ``mean``, ``std`` and ``channel_order``, the one normalization the data
    preprocessor applies.

    Args:
        corruptions: Non-empty list of corruption configs (``dict(type=..., ...)`` with a
            registered :class:`BaseCorruption` type) or built corruption transforms.
        weights: Optional non-negative choice weights, one per corruption, not all zero;
            normalized to probabilities. None (default) chooses uniformly.
    """

    def __init__(
        self,
        corruptions: Sequence[Union[dict, BaseCorruption]],
        weights: Optional[Sequence[float]] = None,
    ) -> None:
        if isinstance(corruptions, (dict, BaseCorruption)) or not corruptions:
            raise ValueError(
                f'corruptions must be a non-empty list of corruption configs '
                f'(types: {registered_corruptions()}), got {corruptions!r}'
            )
        self.corruptions = [_build_corruption(cfg) for cfg in corruptions]
        self._check_shared_normalization()
        if weights is None:
            weights = [1.0] * len(self.corruptions)
        weights = self._parse_weights(weights)
        if len(weights) != len(self.corruptions):
            raise ValueError(
                f'weights must have one entry per corruption '
                f'({len(self.corruptions)}), got {len(weights)}: {weights}'
            )
        if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(
                f'weights must be finite, non-negative and not all zero, got {weights}'
            )
        self.weights = weights
        self.probabilities = np.asarray(weights) / sum(weights)

    @staticmethod
    def _parse_weights(weights: Sequence[float]) -> List[float]:
        """``weights`` as floats; a string, a scalar or non-numbers are refused by name."""
        if isinstance(weights, np.ndarray):
            weights = weights.tolist()
        if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
            raise ValueError(
                f'weights must be a list of numbers, one per corruption, or None, got {weights!r}'
            )
        if any(isinstance(w, bool) or not isinstance(w, numbers.Real) for w in weights):
            raise ValueError(f'weights must be numbers, got {weights!r}')
        return [float(w) for w in weights]

    def _check_shared_normalization(self) -> None:
        first = self.corruptions[0]
        for other in self.corruptions[1:]:
            for arg, attr in (
                ('mean', 'mean_rgb'),
                ('std', 'std_rgb'),
                ('channel_order', 'channel_order'),
            ):
                if getattr(other, attr) != getattr(first, attr):
                    raise ValueError(
                        f'all corruptions must share {arg}: {first!r} has '
                        f'{getattr(first, attr)!r} but {other!r} has {getattr(other, attr)!r}'
                    )

    @cache_randomness
    def _choose(self) -> int:
        return int(np.random.choice(len(self.corruptions), p=self.probabilities))

    def transform(self, results: dict) -> dict:
        return self.corruptions[self._choose()].transform(results)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(corruptions={self.corruptions}, weights={self.weights})'
