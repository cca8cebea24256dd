"""tools/analysis/benchmark_step.py end to end on a tiny ViT: every variant runs in its own
process, trains, and lands in the table and the JSON."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
TOOL = ROOT / 'tools' / 'analysis' / 'benchmark_step.py'
VARIANTS = ('bare-n2', 'ebm-n2', 'ebm-n2-fd')


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=900)


def test_tiny_vit_table_and_json(tmp_path):
    out = tmp_path / 'step.json'
    result = run_tool('--arch', 'deit-tiny', '--img-size', '32', '--batch-size', '2',
                      '--warmup', '1', '--steps', '5', '--repeats', '2', '--threads', '1',
                      '--variants', *VARIANTS, '--json', str(out))
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
    table = result.stdout.splitlines()
    reference = next(line for line in table if line.startswith('bare-n2'))
    assert reference.split()[3::2] == ['1.00'] * 4  # time, peak, step, alloc ratios
    assert 'interleaved runs' in table[-1] and 'ratios against bare-n2' in table[-1]


def test_bad_arguments_name_the_value():
    result = run_tool('--repeats', '0')
    assert result.returncode == 2 and '--repeats must be >= 1, got 0' in result.stderr
    result = run_tool('--variants', 'ebm-n3')
    assert result.returncode == 2 and "invalid choice: 'ebm-n3'" in result.stderr
