"""The set-up script is idempotent and the README quick start has exactly two commands."""
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_setup_env_skips_installs_when_up_to_date():
    venv = Path(sys.executable).parent.parent
    result = subprocess.run(['bash', str(REPO / 'tools' / 'setup_env.sh')], cwd=REPO,
                            env={'EBM_VENV': str(venv), 'PATH': '/usr/bin:/bin',
                                 'HOME': str(Path.home())},
                            capture_output=True, text=True, check=True)
    assert 'is up to date' in result.stdout
    assert 'installing' not in result.stdout


def test_readme_quick_start_has_the_two_make_commands():
    readme = (REPO / 'README.md').read_text()
    section = readme.split('## Quick start', 1)[1].split('\n## ', 1)[0]
    commands = re.findall(r'```(?:bash|shell)?\n(.*?)```', section, flags=re.S)
    lines = [line for block in commands for line in block.splitlines() if line.strip()]
    assert lines == ['make demo', 'make test']
    makefile = (REPO / 'Makefile').read_text()
    assert re.search(r'^demo: env$', makefile, flags=re.M)
    assert re.search(r'^test: env$', makefile, flags=re.M)
    assert 'make test' in (REPO / '.ci' / 'run').read_text()
