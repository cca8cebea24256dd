"""tools/analysis/benchmark_pipeline.py from the command line, tiny: it runs every corruption
of the shipped ImageNet configs (the mixed one as the configs define it) and rejects bad
arguments by name. No timing is asserted."""

import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

ROOT = Path(__file__).parents[2]
TOOL = ROOT / 'tools' / 'analysis' / 'benchmark_pipeline.py'
MIXED_BASE = ROOT / 'configs' / '_base_' / 'datasets' / 'imagenet_bs32_ebm-pretrain-mixed.py'
MIXED = 'Mixed: RandomBoxMask preset=large + SuperResolution scale=16 + Denoising + Colorization'
# configs/ebm/*_in1k.py: gridmask16/24/32, randmask-small/large, sr16/32, denoise, colorize
# and the mixed task of imagenet_bs32_ebm-pretrain-mixed.py
CORRUPTIONS = [
    'Colorization',
    'Denoising gamma_range=(0.0, 1.0)',
    'GridMask cell_size=16 mask_ratio=0.7',
    'GridMask cell_size=24 mask_ratio=0.7',
    'GridMask cell_size=32 mask_ratio=0.7',
    'RandomBoxMask preset=large',
    'RandomBoxMask preset=small',
    'SuperResolution scale=16',
    'SuperResolution scale=32',
    MIXED,
]


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), *args], capture_output=True, text=True, cwd=ROOT, timeout=600
    )


def test_mixed_label_is_the_mixed_config():
    """The MIXED expected below is what the config defines: random large boxes, SR 16x,
    denoising and colorization (not grid masking)."""
    corruption = Config.fromfile(MIXED_BASE).corruption
    assert corruption.type == 'MixedCorruption'
    assert [(c.type, c.get('preset'), c.get('scale')) for c in corruption.corruptions] == [
        ('RandomBoxMaskCorruption', 'large', None),
        ('SuperResolutionCorruption', None, 16),
        ('DenoisingCorruption', None, None),
        ('ColorizationCorruption', None, None),
    ]


def test_tiny_run_lists_every_config_corruption(photo_crops_dir):
    images = [str(p) for p in sorted(photo_crops_dir.glob('*.png'))[:2]]
    result = run_tool('--size', '32', '--num-images', '2', '--repeat', '1', '--images', *images)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        '32 px, one thread, fastest of 1 runs x 2 images cycling over 2 photos (64x64, 64x64)'
    )
    rows = [
        [cell.strip() for cell in line.strip('|').split('|')]
        for line in lines
        if line.startswith('| ') and not line.startswith('| pipeline')
    ]
    table = ['RandomResizedCrop alone'] + [f'+ {name}' for name in CORRUPTIONS]
    assert [row[0] for row in rows] == table * 2  # both tables, same rows, same order
    for name, per_s, ms, ratio in rows:
        assert float(per_s) > 0 and float(ms) > 0
        assert (ratio == '') == (name == 'RandomResizedCrop alone')


@pytest.mark.parametrize(
    'args, message',
    [
        (
            ('--size', '0'),
            '--size must be >= 32 (the largest grid cell / SR factor of the configs), got 0',
        ),
        (('--size', '31'), '--size must be >= 32'),
        (('--repeat', '0'), '--repeat must be >= 1, got 0'),
        (('--num-images', '-3'), '--num-images must be >= 1, got -3'),
    ],
)
def test_bad_arguments_name_the_value(args, message):
    result = run_tool(*args)
    assert result.returncode == 2 and f'error: {message}' in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr
