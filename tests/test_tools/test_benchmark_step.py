"""tools/analysis/benchmark_step.py end to end on a tiny ViT: every variant runs in its own
process, trains, and lands in the table and the JSON."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
TOOL = ROOT / 'tools' / 'analysis' / 'benchmark_step.py'
VARIANTS = ('bare-n2', 'bare-fd-n2', 'ebm-n2', 'ebm-n2-fd', 'ebm-n2-compiled')


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), *args], capture_output=True, text=True, cwd=ROOT, timeout=900
    )


def test_tiny_vit_table_and_json(tmp_path):
    out = tmp_path / 'step.json'
    result = run_tool(
        '--arch',
        'deit-tiny',
        '--img-size',
        '32',
        '--batch-size',
        '2',
        '--warmup',
        '1',
        '--steps',
        '5',
        '--repeats',
        '2',
        '--threads',
        '1',
        '--variants',
        *VARIANTS,
        '--peak-tflops',
        '0.5',
        '--json',
        str(out),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report['settings']['repeats'] == 2
    rows = {row['variant']: row for row in report['results']}
    assert tuple(rows) == VARIANTS and not any('error' in row for row in rows.values())
    for row in rows.values():
        assert len(row['times']) == 10 and len(row['peaks_mib']) == 2  # 2 runs x 5 steps
        assert min(row['times']) == row['min_seconds'] <= row['seconds'] <= max(row['times'])
        assert row['images_per_s'] == pytest.approx(2 / row['seconds'])
        assert row['peak_mib'] > row['step_mib'] > 0
        assert row['peak_mib'] > row['allocated_mib'] > 0  # RSS also holds the libraries
        assert row['flops'] > 0
        assert row['mfu'] == pytest.approx(row['flops'] / row['seconds'] / 0.5e12)
    # the same method does the same matrix work, whoever writes the loop
    assert rows['ebm-n2']['flops'] == pytest.approx(rows['bare-n2']['flops'], rel=0.05)
    assert rows['ebm-n2-fd']['flops'] == pytest.approx(rows['bare-fd-n2']['flops'], rel=0.05)
    # the compiled graph's matrix work is counted from its function run eagerly
    assert rows['ebm-n2-compiled']['flops'] == pytest.approx(rows['ebm-n2']['flops'], rel=0.01)
    # its first step compiles: slower than any timed step
    assert rows['ebm-n2-compiled']['first_seconds'] > 3 * rows['ebm-n2-compiled']['seconds']
    table = result.stdout.splitlines()
    reference = next(line for line in table if line.startswith('bare-n2'))
    ratios = [reference.split()[i] for i in (3, 5, 8, 10, 12)]  # time, min, peak, step, alloc
    assert ratios == ['1.00'] * 5
    assert reference.split()[-1] == f'{100 * rows["bare-n2"]["mfu"]:.1f}%'
    fastest = next(line for line in table if line.startswith('ebm-n2-fd')).split()[4]
    assert float(fastest) == pytest.approx(rows['ebm-n2-fd']['min_seconds'], abs=1e-3)
    assert 'interleaved runs' in table[-2] and 'ratios against bare-n2' in table[-2]
    assert '/ 0.5 TFLOP/s' in table[-1]


def test_grey_config_runs_on_one_channel(tmp_path):
    """CONFIG's backbone and data preprocessor decide the channels and the normalization."""
    out = tmp_path / 'grey.json'
    config = ROOT / 'configs/ebm/ebm_vit-mini-p4_1xb256-gridmask-coslr-10e_fashion-mnist.py'
    result = run_tool(
        *('--img-size', '28', '--batch-size', '2', '--warmup', '1', '--steps', '5'),
        *('--threads', '1', '--variants', 'bare-n2', 'ebm-n2', '--json', str(out), str(config)),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {row['variant']: row for row in json.loads(out.read_text())['results']}
    assert rows['ebm-n2']['flops'] == pytest.approx(rows['bare-n2']['flops'], rel=0.05)


def test_bad_arguments_name_the_value():
    result = run_tool('--repeats', '0')
    assert result.returncode == 2 and '--repeats must be >= 1, got 0' in result.stderr
    result = run_tool('--variants', 'ebm-n3')
    assert result.returncode == 2 and "invalid choice: 'ebm-n3'" in result.stderr
    result = run_tool('--peak-tflops', '0')
    assert result.returncode == 2 and '--peak-tflops must be > 0, got 0.0' in result.stderr


def test_a_failed_variant_fails_the_run():
    result = run_tool(
        '--backbone',
        'convnext',
        '--arch',
        'tiny',
        '--img-size',
        '32',
        '--batch-size',
        '1',
        '--variants',
        'mae',
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert 'failed: mae needs a VisionTransformer backbone, got ConvNeXt' in result.stdout
    assert 'failed variants: mae' in result.stderr


@pytest.mark.parametrize(
    'argv, with_mae',
    [
        (['--backbone', 'vit'], True),
        (['--backbone', 'convnext', '--arch', 'tiny'], False),
        (['--backbone', 'swin', '--arch', 'tiny'], False),
        (
            [
                str(
                    ROOT
                    / 'configs'
                    / 'ebm'
                    / 'ebm_convnext-tiny_8xb32-mixed-amp-coslr-200e_in1k.py'
                )
            ],
            False,
        ),
        (
            [
                str(
                    ROOT
                    / 'configs'
                    / 'ebm'
                    / 'ebm_vit-mini-p8_1xb16-mixed-coslr-400i_skimage-64px.py'
                ),
                '--backbone',
                'swin',
            ],
            True,
        ),
    ],
)
def test_default_variants_leave_mae_out_for_other_backbones(monkeypatch, argv, with_mae):
    monkeypatch.syspath_prepend(str(TOOL.parent))
    benchmark_step = importlib.import_module('benchmark_step')
    variants = benchmark_step.parse_args(argv).variants
    assert ('mae' in variants) == with_mae
    assert set(benchmark_step.VARIANTS) - set(variants) == (set() if with_mae else {'mae'})
