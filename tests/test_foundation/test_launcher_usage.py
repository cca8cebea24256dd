"""The launchers in tools/ answer missing or bad arguments with a usage line and exit status 2."""

import subprocess
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / 'tools'


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess:
    """Runs tools/``name`` with ``args``; its PYTHON fails the test if a launcher gets that far."""
    return subprocess.run(
        ['bash', str(TOOLS / name), *args],
        capture_output=True,
        text=True,
        env={'PATH': '/usr/bin:/bin', 'PYTHON': '/nonexistent/python'},
    )


@pytest.mark.parametrize(
    'name, args, usage',
    [
        ('dist_train.sh', ['cfg.py'], 'CONFIG NUM_PROCESSES [train.py options]'),
        (
            'dist_test.sh',
            ['cfg.py', 'ckpt.pth'],
            'CONFIG CHECKPOINT NUM_PROCESSES [test.py options]',
        ),
        ('dist_launch.sh', ['train.py'], 'SCRIPT NUM_PROCESSES [SCRIPT arguments]'),
        (
            'slurm_train.sh',
            ['part', 'job', 'cfg.py'],
            'PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]',
        ),
    ],
)
def test_too_few_arguments_print_the_usage(name, args, usage):
    result = run_tool(name, *args)
    assert result.returncode == 2
    assert result.stderr == f'usage: {TOOLS / name} {usage}\n'


@pytest.mark.parametrize('count', ['0', 'two', '-1', ''])
def test_dist_train_rejects_a_process_count_that_is_not_a_positive_integer(count):
    result = run_tool('dist_train.sh', 'cfg.py', count)
    assert result.returncode == 2
    assert result.stderr == (
        f"{TOOLS / 'dist_launch.sh'}: NUM_PROCESSES must be a positive integer, got '{count}'\n"
    )
