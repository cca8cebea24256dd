"""EnergyHead: pooling modes, one bias-free linear output, width validation."""

import pytest
import torch
from mmpretrain.registry import MODELS

from mmpretrain_ebm.models import EnergyHead


def test_registered_and_linear_without_bias():
    head = MODELS.build(dict(type='EnergyHead', in_channels=8))
    assert isinstance(head, EnergyHead)
    assert head.fc.weight.shape == (1, 8) and head.fc.bias is None
    assert sum(p.numel() for p in head.parameters()) == 8


@pytest.mark.parametrize(
    'pool_type, shape, pooled',
    [
        ('cls_token', (2, 5, 8), lambda x: x[:, 0]),
        ('mean_tokens', (2, 5, 8), lambda x: x[:, 1:].mean(1)),
        ('gap', (2, 8, 3, 3), lambda x: x.mean((2, 3))),
        ('none', (2, 8), lambda x: x),
        ('auto', (2, 8, 3, 3), lambda x: x.mean((2, 3))),
        ('auto', (2, 8), lambda x: x),
    ],
)
def test_pooling_modes(pool_type, shape, pooled):
    head = EnergyHead(in_channels=8, pool_type=pool_type)
    feats = torch.randn(*shape)
    energy = head((torch.randn(2, 3), feats))  # the last backbone output is used
    assert energy.shape == (2,) and energy.dtype == torch.float32
    torch.testing.assert_close(energy, pooled(feats) @ head.fc.weight[0])


def test_mean_tokens_skips_the_configured_prefix():
    head = EnergyHead(in_channels=4, pool_type='mean_tokens', num_prefix_tokens=0)
    tokens = torch.randn(3, 6, 4)
    torch.testing.assert_close(head.pool(tokens), tokens.mean(1))


def test_width_mismatch_names_both_widths():
    head = EnergyHead(in_channels=16)
    with pytest.raises(ValueError, match=r'in_channels=16.*width 32.*in_channels=32'):
        head((torch.randn(2, 32, 4, 4),))


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(in_channels=0), 'in_channels'),
        (dict(in_channels=8, pool_type='max'), 'pool_type'),
        (dict(in_channels=8, num_prefix_tokens=-1), 'num_prefix_tokens'),
        (
            dict(in_channels=8, num_prefix_tokens='1'),
            r"num_prefix_tokens must be an int >= 0, got '1'",
        ),
        (dict(in_channels=8, feat_index=1.0), r'feat_index must be an int .*got 1\.0'),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EnergyHead(**kwargs)


def test_wrong_feature_rank_is_refused():
    with pytest.raises(ValueError, match='cls_token.*or.*mean_tokens'):
        EnergyHead(in_channels=8)(torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="pool_type='gap'.*4-d"):
        EnergyHead(in_channels=8, pool_type='gap')(torch.randn(2, 8))


@pytest.mark.parametrize('feat_index', [2, -3])
def test_feature_index_out_of_range_names_the_outputs(feat_index):
    head = EnergyHead(in_channels=8, feat_index=feat_index)
    with pytest.raises(
        ValueError,
        match=rf'feat_index={feat_index}\) is out of range: the '
        r'backbone returned 2 feature map\(s\); choose feat_index in \[-2, 1\]',
    ):
        head((torch.randn(2, 8), torch.randn(2, 8)))
    assert head.feat_index == feat_index
