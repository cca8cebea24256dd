"""The set-up script is idempotent, the README quick start has exactly two commands, the
Makefile sets up the core stack for the demo and the linters and the full one for the tests, and
it hands the user's EBM_VENV and PYTHON through untouched."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    not (Path(sys.prefix) / '.mmpretrain_ebm-setup').is_file(),
    reason='not the venv of tools/setup_env.sh: the script would install the pinned stack here',
)
def test_setup_env_skips_installs_when_up_to_date():
    venv = Path(sys.prefix)
    level = (venv / '.mmpretrain_ebm-setup').read_text().split()[0]
    assert level in ('core', 'full')
    # the core level is satisfied by either; the venv's own level never asks for more
    for asked in sorted({'core', level}):
        result = subprocess.run(
            ['bash', str(REPO / 'tools' / 'setup_env.sh'), asked],
            cwd=REPO,
            env={'EBM_VENV': str(venv), 'PATH': '/usr/bin:/bin', 'HOME': str(Path.home())},
            capture_output=True,
            text=True,
            check=True,
        )
        assert result.stdout == f'[setup_env] environment {venv} is up to date ({level} stack)\n'


def test_readme_quick_start_has_the_two_make_commands():
    readme = (REPO / 'README.md').read_text()
    section = readme.split('## Quick start', 1)[1].split('\n## ', 1)[0]
    commands = re.findall(r'```(?:bash|shell)?\n(.*?)```', section, flags=re.S)
    lines = [line for block in commands for line in block.splitlines() if line.strip()]
    assert lines == ['make demo', 'make test']
    makefile = (REPO / 'Makefile').read_text()
    assert re.search(r'^demo: env-core$', makefile, flags=re.M)
    assert re.search(r'^test: env$', makefile, flags=re.M)
    assert 'make test' in (REPO / '.ci' / 'run').read_text()


def make_sandbox(tmp_path: Path) -> Path:
    """A folder where tools/setup_env.sh only records the variables the Makefile passes it."""
    (tmp_path / 'tools').mkdir()
    (tmp_path / 'tools' / 'setup_env.sh').write_text(
        'echo "setup $* PYTHON=${PYTHON-<unset>} EBM_VENV=${EBM_VENV-<unset>}" >> "$LOG"\n'
    )
    return tmp_path


def fake_venv(path: Path) -> Path:
    """A venv whose interpreter only records how it was called."""
    (path / 'bin').mkdir(parents=True)
    python = path / 'bin' / 'python'
    python.write_text('#!/bin/sh\necho "$0 $*" >> "$LOG"\n')
    python.chmod(0o755)
    return python


def run_make(sandbox: Path, args: list, **env) -> list:
    """Runs the repository's Makefile in ``sandbox``; returns the lines its commands logged and
    make's exit status."""
    log = sandbox / 'log'
    base = {k: v for k, v in os.environ.items() if k not in ('PYTHON', 'EBM_VENV', 'MAKEFLAGS')}
    result = subprocess.run(
        ['make', '-C', str(sandbox), '-f', str(REPO / 'Makefile'), *args],
        env={**base, **env, 'LOG': str(log)},
        capture_output=True,
        text=True,
    )
    return log.read_text().splitlines() + [f'make exit {result.returncode}']


def test_make_demo_keeps_the_users_python_and_relative_ebm_venv(tmp_path):
    sandbox = make_sandbox(tmp_path)
    python = fake_venv(sandbox / 'myvenv')
    lines = run_make(sandbox, ['demo'], PYTHON='python3.11', EBM_VENV='myvenv')
    assert lines[0] == f'setup core PYTHON=python3.11 EBM_VENV={sandbox / "myvenv"}'
    assert lines[1].startswith(f'{python} tools/dataset_converters/prepare_demo_data.py')
    assert lines[2].startswith(f'{python} tools/train.py configs/ebm/')
    assert lines[3:] == [
        f'{python} tools/analysis/restoration_summary.py work_dirs/demo',
        'make exit 0',
    ]


def test_make_test_takes_ebm_venv_from_the_command_line_or_defaults_to_dot_venv(tmp_path):
    sandbox = make_sandbox(tmp_path)
    other = fake_venv(tmp_path / 'elsewhere')
    lines = run_make(sandbox, ['test', f'EBM_VENV={other.parent.parent}'])
    assert lines == [
        f'setup full PYTHON=<unset> EBM_VENV={other.parent.parent}',
        f'{other} -m pytest tests',
        'make exit 0',
    ]
    (sandbox / 'log').unlink()
    default = fake_venv(sandbox / '.venv')
    lines = run_make(sandbox, ['test'])
    assert lines == [
        f'setup full PYTHON=<unset> EBM_VENV={sandbox / ".venv"}',
        f'{default} -m pytest tests',
        'make exit 0',
    ]


def test_make_seg_sets_up_the_full_stack_and_make_lint_the_core_one(tmp_path):
    sandbox = make_sandbox(tmp_path)
    python = fake_venv(sandbox / '.venv')
    venv = sandbox / '.venv'
    assert run_make(sandbox, ['seg']) == [
        f'setup full PYTHON=<unset> EBM_VENV={venv}',
        'make exit 0',
    ]
    (sandbox / 'log').unlink()
    assert run_make(sandbox, ['lint']) == [
        f'setup core PYTHON=<unset> EBM_VENV={venv}',
        f'{python} -m ruff check .',
        f'{python} -m ruff format --check .',
        'make exit 0',
    ]
