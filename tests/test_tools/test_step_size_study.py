"""step_size_study end to end on a tiny grid: real trainings, held-out gains, table and JSON."""

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
sys.path.insert(0, str(REPO / 'tools' / 'analysis'))
import step_size_study  # noqa: E402


def test_tiny_grid_trains_each_cell_and_reports_held_out_gains(tmp_path, capsys):
    argv = [
        '--sizes',
        '16',
        '--iters',
        '2',
        '--rules',
        'fixed:1',
        'rms:0.1',
        '--params',
        'linear',
        'log',
        '--alpha-lr-mults',
        '100',
        '--num-images',
        '2',
        '--per-image',
        '2',
        '--work-dir',
        str(tmp_path),
    ]
    assert step_size_study.main(argv) == 0
    rows = json.loads((tmp_path / 'results.json').read_text())['rows']
    assert [(r['rule'], r['param']) for r in rows] == [
        ('fixed:1', 'linear'),
        ('fixed:1', 'log'),
        ('rms:0.1', 'linear'),
        ('rms:0.1', 'log'),
    ]
    corruptions = {'grid_mask', 'super_resolution', 'denoising', 'colorization'}
    for row in rows:
        assert row['patch_size'] == 8  # the demo ViT's
        assert set(row['gains']) == corruptions
        assert row['mean_gain'] == pytest.approx(sum(row['gains'].values()) / 4)
        assert row['alpha_final'] != row['alpha_initial']  # alpha learns (lr mult 100)
    fixed = [r for r in rows if r['rule'] == 'fixed:1']
    assert all(r['alpha_initial'] == pytest.approx(1.0) for r in fixed)
    # alpha about 1 moves the pixels little: the restorations are nearly the corrupted inputs
    # (most where a grid cell masks a whole patch of the demo's mix: -0.09 dB measured)
    assert all(abs(g) < 0.2 for r in fixed for g in r['gains'].values())
    # the first-batch rule picks a larger alpha for this ViT at 16 px (measured 3.5), and the
    # linear and log cells start from the same value (same seed, same first batch)
    rms = [r['alpha_initial'] for r in rows if r['rule'] == 'rms:0.1']
    assert rms[0] > 1.5 and rms[0] == pytest.approx(rms[1], rel=1e-6)
    table = capsys.readouterr().out
    assert '| 16 px / 8 | rms:0.1 | 100 | log |' in table


def test_log_alpha_prototype_is_exp_of_its_parameter():
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    init_default_scope('mmpretrain')
    model = MODELS.build(
        dict(
            type='LogAlphaEnergyRestoration',
            alpha=5.0,
            backbone=dict(
                type='VisionTransformer',
                img_size=16,
                patch_size=8,
                arch=dict(embed_dims=16, num_layers=1, num_heads=1, feedforward_channels=16),
            ),
            head=dict(type='EnergyHead', in_channels=16),
        )
    )
    names = [name for name, _ in model.named_parameters()]
    assert 'log_alpha' in names and 'alpha' not in names
    assert float(model.alpha) == pytest.approx(5.0)
    model.set_alpha(20.0)
    assert float(model.alpha) == pytest.approx(20.0)


@pytest.mark.parametrize(
    'argv',
    [
        ['--rules', 'rms:0'],
        ['--rules', 'auto'],
        ['--sizes', '20'],
        ['--iters', '1'],
        ['--sizes', '24', '--patch-size', '16'],
        ['--sizes', '304'],
        ['--patch-size', '0'],
    ],
)
def test_bad_arguments_are_refused(argv):
    with pytest.raises((SystemExit, ValueError)):
        step_size_study.parse_args(argv)


def test_patch_size_and_crop_follow_the_resolution():
    args = step_size_study.parse_args(['--sizes', '32', '224', '--patch-size', '16'])
    assert args.patch_size == 16 and args.sizes == [32, 224]
    # 1.5x the resolution, but never below 96 px nor above the smallest photograph's 300 px
    assert [step_size_study.data_crop(s) for s in (16, 64, 96, 224)] == [96, 96, 144, 300]
