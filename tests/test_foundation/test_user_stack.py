"""tools/test_user_stack.sh (the second tested stack) refuses what would not be that stack,
before it creates or installs anything. Its full run is not a test: ``make test-user-stack``."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_user_stack(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        ['bash', str(REPO / 'tools' / 'test_user_stack.sh')],
        env={'PATH': '/usr/bin:/bin', 'HOME': '/nonexistent', **env},
        capture_output=True,
        text=True,
    )


def test_user_stack_refuses_a_missing_python_and_the_projects_own_venv(tmp_path):
    result = run_user_stack(EBM_USER_PYTHON=str(tmp_path / 'python3.12'))
    assert result.returncode == 1
    assert result.stderr == (
        f"[user_stack] error: '{tmp_path / 'python3.12'}' does not run a Python >= 3.11 with "
        'venv; set EBM_USER_PYTHON to one\n'
    )
    result = run_user_stack(EBM_USER_PYTHON=sys.executable, EBM_USER_VENV=str(REPO / '.venv'))
    assert result.returncode == 1
    assert "is the project's own venv" in result.stderr
    assert result.stdout == ''  # nothing created or installed
