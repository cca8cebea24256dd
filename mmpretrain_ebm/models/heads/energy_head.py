"""Energy head: E(x) = h(pool(psi(x))), a linear map to one output without bias (paper 2.2)."""

from typing import Sequence, Tuple, Union

from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class EnergyHead(BaseModule):
    """Pool backbone features and map them to one energy per image.

    Pooling (``pool_type``) of the selected backbone output ``feats[feat_index]``:

    - ``'cls_token'``: tokens [B, L, C] -> ``x[:, 0]`` (ViT with ``out_type='raw'``).
    - ``'mean_tokens'``: tokens [B, L, C] -> mean of ``x[:, num_prefix_tokens:]``, the patch
      tokens (ViT with ``out_type='raw'``).
    - ``'gap'``: feature map [B, C, H, W] -> global average pool (ResNet, Swin, ConvNeXt with
      ``gap_before_final_norm=False``).
    - ``'none'``: features already pooled by the backbone [B, C] (ViT ``out_type='cls_token'``
      or ``'avg_featmap'``, ConvNeXt's default).
    - ``'auto'`` (default): ``'none'`` for [B, C] and ``'gap'`` for [B, C, H, W]; token
      sequences [B, L, C] are refused because class token and patch mean differ.

    Args:
        in_channels: Width C of the pooled features.
        pool_type: One of :attr:`POOL_TYPES`.
        num_prefix_tokens: Leading non-patch tokens skipped by ``'mean_tokens'``.
        feat_index: Which backbone output to use when it returns several.
        init_cfg: mmengine initialization config; ``None`` keeps ``nn.Linear``'s default.
    """

    POOL_TYPES = ('auto', 'cls_token', 'mean_tokens', 'gap', 'none')
    _EXPECTED_NDIM = {'cls_token': 3, 'mean_tokens': 3, 'gap': 4, 'none': 2}

    def __init__(
        self,
        in_channels: int,
        pool_type: str = 'auto',
        num_prefix_tokens: int = 1,
        feat_index: int = -1,
        init_cfg: Union[dict, list, None] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f'in_channels must be a positive int, got {in_channels!r}')
        if pool_type not in self.POOL_TYPES:
            raise ValueError(f'pool_type must be one of {self.POOL_TYPES}, got {pool_type!r}')
        if (
            isinstance(num_prefix_tokens, bool)
            or not isinstance(num_prefix_tokens, int)
            or num_prefix_tokens < 0
        ):
            raise ValueError(f'num_prefix_tokens must be an int >= 0, got {num_prefix_tokens!r}')
        if isinstance(feat_index, bool) or not isinstance(feat_index, int):
            raise ValueError(
                f'feat_index must be an int (index into the backbone outputs), got {feat_index!r}'
            )
        self.in_channels = in_channels
        self.pool_type = pool_type
        self.num_prefix_tokens = num_prefix_tokens
        self.feat_index = feat_index
        self.fc = nn.Linear(in_channels, 1, bias=False)

    def _resolve_pool_type(self, x: Tensor) -> str:
        if self.pool_type != 'auto':
            expected = self._EXPECTED_NDIM[self.pool_type]
            if x.dim() != expected:
                raise ValueError(
                    f"EnergyHead(pool_type='{self.pool_type}') expects {expected}-d backbone "
                    f'features, got shape {tuple(x.shape)}'
                )
            return self.pool_type
        if x.dim() == 2:
            return 'none'
        if x.dim() == 4:
            return 'gap'
        raise ValueError(
            f"EnergyHead(pool_type='auto') cannot pool features of shape {tuple(x.shape)}; "
            "for token sequences [B, L, C] choose pool_type='cls_token' or 'mean_tokens'"
        )

    def pool(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Select and pool backbone output(s) to [B, C]."""
        if isinstance(feats, (tuple, list)):
            if not -len(feats) <= self.feat_index < len(feats):
                raise ValueError(
                    f'EnergyHead(feat_index={self.feat_index}) is out of range: the '
                    f'backbone returned {len(feats)} feature map(s); choose '
                    f'feat_index in [{-len(feats)}, {len(feats) - 1}]'
                )
            x = feats[self.feat_index]
        else:
            x = feats
        pool_type = self._resolve_pool_type(x)
        if pool_type == 'cls_token':
            pooled = x[:, 0]
        elif pool_type == 'mean_tokens':
            if x.shape[1] <= self.num_prefix_tokens:
                raise ValueError(
                    f'mean_tokens: {x.shape[1]} tokens leave no patch token '
                    f'after num_prefix_tokens={self.num_prefix_tokens}'
                )
            pooled = x[:, self.num_prefix_tokens :].mean(dim=1)
        elif pool_type == 'gap':
            pooled = x.mean(dim=(2, 3))
        else:
            pooled = x
        if pooled.shape[-1] != self.in_channels:
            raise ValueError(
                f'EnergyHead(in_channels={self.in_channels}) does not fit the backbone: its '
                f'pooled features have width {pooled.shape[-1]} (backbone output shape '
                f'{tuple(x.shape)}, pool_type={pool_type!r}); set head.in_channels='
                f'{pooled.shape[-1]}'
            )
        return pooled

    def forward(self, feats: Union[Tensor, Tuple[Tensor, ...]]) -> Tensor:
        """Energies [B] in float32 (autocast may compute the linear map in low precision)."""
        return self.fc(self.pool(feats)).squeeze(-1).float()
