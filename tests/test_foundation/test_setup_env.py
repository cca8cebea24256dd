"""tools/setup_env.sh: interpreter and compiler checks, and the mmcv wheel cache keyed by Python
tag, torch version and ops build.

The venv here is a stub whose pip only records its calls (and fakes the mmcv sdist and wheel);
every other call runs in this venv's real interpreter, so the version checks and the cache key
are computed by the real Python and torch.
"""

import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
WHEEL_NAME = 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'

# $STATE holds the content of the last installed mmcv wheel: 'ok' imports, anything else not;
# like the real one, mmcv imports only once its dependencies came with the editable install.
STUB_PYTHON = r"""#!/bin/bash
echo "$PWD :: $*" >> "$LOG"
after() {
    local flag=$1; shift
    while (( $# )); do [[ $1 == "$flag" ]] && { echo "$2"; return; }; shift; done
}
if [[ $1 == -m && $2 == pip ]]; then
    case $3 in
        download) dest=$(after -d "$@"); mkdir -p "$dest/mmcv-2.1.0"
                  echo "flags = ['-std=c++17']" > "$dest/mmcv-2.1.0/setup.py"
                  tar -czf "$dest/mmcv-2.1.0.tar.gz" -C "$dest" mmcv-2.1.0 ;;
        wheel) grep -q c++20 setup.py && echo ok > "$(after -w "$@")/WHEEL_NAME" ;;
        install) for arg; do [[ $arg == *.whl ]] && cp "$arg" "$STATE"
                             [[ $arg == -e ]] && touch "$STATE.deps"; done ;;
    esac
    exit 0
fi
if [[ $1 == - ]]; then  # the mmcv check
    [[ $(cat "$STATE" 2>/dev/null) == ok && -f $STATE.deps ]] || { echo "no mmcv" >&2; exit 1; }
    exit 0
fi
[[ $2 == *"stack OK"* ]] && exit 0
exec REAL_PYTHON "$@"
"""


def write_script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def run_setup(cwd: Path, **env) -> subprocess.CompletedProcess:
    """Runs tools/setup_env.sh from ``cwd`` with a clean environment plus ``env``."""
    base = {
        'PATH': '/usr/bin:/bin',
        'HOME': str(cwd),
        'LOG': str(cwd / 'log'),
        'STATE': str(cwd / 'mmcv_state'),
    }
    return subprocess.run(
        ['/bin/bash', str(REPO / 'tools' / 'setup_env.sh')],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
    )


def stub_venv(cwd: Path, venv: str = 'venv') -> None:
    """A venv under ``cwd`` whose interpreter is the stub above."""
    write_script(
        cwd / venv / 'bin' / 'python',
        STUB_PYTHON.replace('WHEEL_NAME', WHEEL_NAME).replace('REAL_PYTHON', sys.executable),
    )


def compiler(cwd: Path, version: str) -> str:
    """A C++ compiler that only answers -dumpversion."""
    return str(write_script(cwd / f'cxx-{version}', f'#!/bin/sh\necho {version}\n'))


def cache_key() -> str:
    """The wheel folder this machine's venv needs (mmcv builds CUDA ops only where torch sees
    a GPU)."""
    ops = f'cu{torch.version.cuda.replace(".", "")}' if torch.cuda.is_available() else 'cpu'
    return f'cp{sys.version_info[0]}{sys.version_info[1]}-torch{torch.__version__}-{ops}'


def test_relative_paths_keyed_cache_and_a_broken_cached_wheel_is_rebuilt(tmp_path):
    stub_venv(tmp_path)
    wheels = tmp_path / 'cache' / 'wheels'
    keyed = write_script(wheels / cache_key() / WHEEL_NAME, 'broken')
    other_key = write_script(wheels / 'cp311-torch2.13.0+cpu-cpu' / WHEEL_NAME, 'ok')
    flat = write_script(wheels / WHEEL_NAME, 'ok')
    result = run_setup(
        tmp_path, EBM_VENV='venv', EBM_CACHE='cache', CXX=compiler(tmp_path, '12.2.0')
    )
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / 'log').read_text()
    assert (
        'pip install --disable-pip-version-check --progress-bar off --no-deps --force-reinstall '
        f'{keyed}' in calls
    )
    assert 'the cached wheel does not work' in result.stdout
    lines = calls.splitlines()
    build = [i for i, line in enumerate(lines) if ' pip wheel ' in line]
    deps = [i for i, line in enumerate(lines) if ' pip install ' in line and ' -e ' in line]
    assert len(build) == 1 and deps[0] < build[0]  # judged only once mmcv's dependencies are in
    assert not Path(lines[build[0]].split(' :: ')[0]).exists()  # the build folder is gone
    assert keyed.read_text() == 'ok\n'  # rebuilt in place, from the relative EBM_CACHE
    assert (tmp_path / 'mmcv_state').read_text() == 'ok\n'  # and installed
    assert str(other_key) not in calls and str(flat) not in calls
    assert (tmp_path / 'venv' / '.mmpretrain_ebm-setup').is_file()


def test_a_working_cached_wheel_is_installed_without_a_build(tmp_path):
    stub_venv(tmp_path)
    keyed = write_script(tmp_path / 'cache' / 'wheels' / cache_key() / WHEEL_NAME, 'ok')
    result = run_setup(
        tmp_path, EBM_VENV=str(tmp_path / 'venv'), EBM_CACHE='cache', CXX='/nonexistent/g++'
    )
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / 'log').read_text()
    assert f'--force-reinstall {keyed}' in calls
    assert ' pip download ' not in calls and 'building' not in result.stdout
    # every install but the mmcv wheel's goes through the pins of the constraints file
    pins = dict(
        line.split('==')
        for line in (REPO / 'requirements' / 'constraints.txt').read_text().splitlines()
        if line and not line.startswith('#')
    )
    pip = '-m pip install --disable-pip-version-check --progress-bar off'
    constraints = f'-c {REPO / "requirements" / "constraints.txt"}'
    assert (
        f'{pip} {constraints} torch=={pins["torch"]} torchvision=={pins["torchvision"]}\n' in calls
    )
    assert f'{pip} {constraints} --no-build-isolation -e {REPO}[tests,seg]\n' in calls
    assert WHEEL_NAME.startswith(f'mmcv-{pins["mmcv"]}-')


def test_a_build_without_gxx_10_stops_with_a_clear_error(tmp_path):
    stub_venv(tmp_path)
    for cxx, message in [
        (compiler(tmp_path, '9.4.0'), "is version '9.4.0'"),
        ('/nonexistent/g++', 'not found'),
    ]:
        result = run_setup(tmp_path, EBM_VENV='venv', EBM_CACHE='cache', CXX=cxx)
        assert result.returncode == 1
        assert result.stderr.startswith(f"[setup_env] error: C++ compiler '{cxx}' {message}")
        assert 'needs g++ >= 10' in result.stderr
        assert ' pip download ' not in (tmp_path / 'log').read_text()


def test_a_base_python_older_than_3_11_is_refused(tmp_path):
    old = write_script(tmp_path / 'python3.10', '#!/bin/sh\necho 3.10.12\n')
    # PYTHON (the launchers' interpreter) must not be taken as the base interpreter.
    launcher = write_script(
        tmp_path / 'launcher-python', '#!/bin/sh\necho PYTHON ran >&2; exit 3\n'
    )
    result = run_setup(tmp_path, EBM_VENV='new', EBM_BASE_PYTHON=str(old), PYTHON=str(launcher))
    assert result.returncode == 1
    assert result.stderr == (
        f"[setup_env] error: the base interpreter '{old}' is Python 3.10.12; "
        'mmpretrain_ebm needs Python >= 3.11: set EBM_BASE_PYTHON to one\n'
    )
    assert not (tmp_path / 'new').exists()


def test_no_python_on_path_is_named_in_the_error(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for tool in ('cat', 'cut', 'dirname', 'sha256sum'):
        os.symlink(f'/usr/bin/{tool}', bin_dir / tool)
    result = run_setup(tmp_path, EBM_VENV='new', PATH=str(bin_dir))
    assert result.returncode == 1
    assert result.stderr == (
        '[setup_env] error: neither python3.11 nor python3 is on PATH; '
        'install Python >= 3.11 or set EBM_BASE_PYTHON to one\n'
    )
