"""tools/analysis/profile_step.py on a tiny ViT: the eager step's table shows autograd's
composite double backward, the compiled step's the fused graphs inductor built."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
TOOL = ROOT / 'tools' / 'analysis' / 'profile_step.py'
TINY = ('--arch', 'deit-tiny', '--img-size', '32', '--batch-size', '2', '--steps', '2')


def profile(variant: str, tmp_path: Path) -> str:
    out = tmp_path / f'{variant}.txt'
    result = subprocess.run(
        [sys.executable, str(TOOL), variant, *TINY, '--top', '40', '--out', str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert out.read_text().strip() in result.stdout  # after the log lines, if any
    return result.stdout


def test_eager_and_compiled_steps_show_their_kernels(tmp_path):
    eager = profile('ebm-n2', tmp_path)
    compiled = profile('ebm-n2-compiled', tmp_path)
    assert eager.startswith('ebm-n2: vit deit-tiny, 32 px, batch 2, cpu; 2 warm-up step(s)')
    assert 'rows by self_cpu_time_total' in eager and 'ms per step' in eager
    assert 'aten::mm' in eager and 'CompiledFxGraph' not in eager
    assert 'CompiledFxGraph' in compiled


def test_unknown_variant_is_named():
    result = subprocess.run(
        [sys.executable, str(TOOL), 'ebm-n3'], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 2 and "invalid choice: 'ebm-n3'" in result.stderr
