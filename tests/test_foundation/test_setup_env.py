"""tools/setup_env.sh: interpreter and compiler checks, the mmcv wheel cache keyed by Python
tag, torch version and ops build, and the two levels (core: mmcv-lite; full: mmcv with ops and
mmseg) in either order.

The venv here is a stub whose pip only records its calls (and fakes the mmcv sdist and wheel,
and mmcv-lite); every other call runs in this venv's real interpreter, so the version checks
and the cache key are computed by the real Python and torch.
"""

import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
WHEEL_NAME = 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'
CONSTRAINTS = REPO / 'requirements' / 'constraints.txt'
PINS = dict(
    line.split('==')
    for line in CONSTRAINTS.read_text().splitlines()
    if line and not line.startswith('#')
)
PIP = '-m pip install --disable-pip-version-check --progress-bar off'
PINNED = f'{PIP} -c {CONSTRAINTS}'  # every install but the mmcv wheel's goes through the pins

# $STATE holds the content of the last installed mmcv wheel: 'ok' imports, anything else not;
# like the real one, mmcv imports only once its dependencies came with the editable install.
# $STATE.lite exists while mmcv-lite is installed; a wheel installed over it is an error (both
# write the mmcv package).
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
        install) for arg; do
                     if [[ $arg == *.whl ]]; then
                         [[ -f $STATE.lite ]] && { echo "mmcv over mmcv-lite" >&2; exit 1; }
                         cp "$arg" "$STATE"
                     fi
                     [[ $arg == mmcv-lite==* ]] && touch "$STATE.lite"
                     [[ $arg == -e ]] && touch "$STATE.deps"; done ;;
        uninstall) [[ " $* " == *" mmcv-lite "* ]] && rm "$STATE.lite" ;;
    esac
    exit 0
fi
if [[ $1 == - && $2 == distributions ]]; then  # which of mmcv and mmcv-lite are installed
    [[ -f $STATE ]] && echo mmcv
    [[ -f $STATE.lite ]] && echo mmcv-lite
    exit 0
fi
if [[ $1 == - && $2 == mmcv-check ]]; then  # the full mmcv imports, with its ops
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


def run_setup(cwd: Path, *args: str, **env) -> subprocess.CompletedProcess:
    """Runs tools/setup_env.sh ``args`` from ``cwd`` with a clean environment plus ``env``."""
    base = {
        'PATH': '/usr/bin:/bin',
        'HOME': str(cwd),
        'LOG': str(cwd / 'log'),
        'STATE': str(cwd / 'mmcv_state'),
    }
    return subprocess.run(
        ['/bin/bash', str(REPO / 'tools' / 'setup_env.sh'), *args],
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


def stamp_level(venv: Path) -> str:
    """The level in the set-up stamp ``<level> <sha256 of the inputs>``."""
    level, digest = (venv / '.mmpretrain_ebm-setup').read_text().split()
    assert len(digest) == 64 and int(digest, 16) >= 0
    return level


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
    assert f'{PINNED} torch=={PINS["torch"]} torchvision=={PINS["torchvision"]}\n' in calls
    assert f'{PINNED} --no-build-isolation -e {REPO}[tests,seg]\n' in calls
    assert 'mmcv-lite' not in calls
    assert WHEEL_NAME.startswith(f'mmcv-{PINS["mmcv"]}-')
    assert stamp_level(tmp_path / 'venv') == 'full'
    # then `make demo` (the core level) installs nothing
    again = run_setup(tmp_path, 'core', EBM_VENV='venv')
    assert (
        again.stdout == f'[setup_env] environment {tmp_path / "venv"} is up to date (full stack)\n'
    )
    assert (tmp_path / 'log').read_text() == calls


def test_a_build_without_gxx_10_stops_with_a_clear_error(tmp_path):
    stub_venv(tmp_path)
    assert run_setup(tmp_path, 'core', EBM_VENV='venv').returncode == 0  # needs no compiler
    for cxx, message in [
        (compiler(tmp_path, '9.4.0'), "is version '9.4.0'"),
        ('/nonexistent/g++', 'not found'),
    ]:
        result = run_setup(tmp_path, EBM_VENV='venv', EBM_CACHE='cache', CXX=cxx)
        assert result.returncode == 1
        assert result.stderr.startswith(f"[setup_env] error: C++ compiler '{cxx}' {message}")
        assert 'needs g++ >= 10' in result.stderr
        assert ' pip download ' not in (tmp_path / 'log').read_text()
        # the core stamp is gone: the venv is not up to date at any level
        assert not (tmp_path / 'venv' / '.mmpretrain_ebm-setup').exists()
        assert (tmp_path / 'mmcv_state.lite').is_file()  # mmcv-lite stays until a wheel replaces it


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


def test_core_then_full_replaces_mmcv_lite_and_then_neither_level_installs_anything(tmp_path):
    """`make demo` then `make test` (and `make demo` again) on a fresh clone."""
    stub_venv(tmp_path)
    keyed = write_script(tmp_path / 'cache' / 'wheels' / cache_key() / WHEEL_NAME, 'ok')
    env = dict(EBM_VENV='venv', EBM_CACHE='cache', CXX='/nonexistent/g++')
    log, venv = tmp_path / 'log', tmp_path / 'venv'

    core = run_setup(tmp_path, 'core', **env)
    assert core.returncode == 0, core.stderr
    calls = log.read_text()
    assert f'{PINNED} torch=={PINS["torch"]} torchvision=={PINS["torchvision"]}\n' in calls
    assert (
        f'{PINNED} --no-build-isolation -e {REPO}[tests] mmcv-lite=={PINS["mmcv-lite"]}\n' in calls
    )
    assert '.whl' not in calls and 'ninja' not in calls and 'seg]' not in calls
    assert (tmp_path / 'mmcv_state.lite').is_file() and not (tmp_path / 'mmcv_state').exists()
    assert stamp_level(venv) == 'core'
    assert PINS['mmcv-lite'] == PINS['mmcv']  # the same mmcv, with and without its ops

    again = run_setup(tmp_path, 'core', **env)
    assert again.stdout == f'[setup_env] environment {venv} is up to date (core stack)\n'
    assert log.read_text() == calls

    full = run_setup(tmp_path, **env)  # the default level
    assert full.returncode == 0, full.stderr
    lines = log.read_text()[len(calls) :].splitlines()
    uninstall = [i for i, line in enumerate(lines) if ' pip uninstall ' in line]
    wheel = [i for i, line in enumerate(lines) if line.endswith(f'--force-reinstall {keyed}')]
    assert len(uninstall) == 1 and lines[uninstall[0]].endswith(' -y mmcv-lite')
    assert len(wheel) == 1 and uninstall[0] < wheel[0]  # mmcv-lite out before mmcv goes in
    editable = [i for i, line in enumerate(lines) if line.endswith(f' -e {REPO}[tests,seg]')]
    assert len(editable) == 1 and wheel[0] < editable[0]
    assert lines[editable[0]].endswith(f'{PINNED} --no-build-isolation -e {REPO}[tests,seg]')
    assert 'replacing mmcv-lite' in full.stdout
    assert not (tmp_path / 'mmcv_state.lite').exists()
    assert (tmp_path / 'mmcv_state').read_text() == 'ok'  # the cached wheel, installed
    assert stamp_level(venv) == 'full'

    calls = log.read_text()
    for level in ('core', 'full'):
        again = run_setup(tmp_path, level, **env)
        assert again.stdout == f'[setup_env] environment {venv} is up to date (full stack)\n'
    assert log.read_text() == calls


def test_core_keeps_the_full_mmcv_of_a_venv_with_an_outdated_stamp(tmp_path):
    """A venv set up at the full level whose inputs changed (here: a stamp of an older script)
    is updated at the full level by `make demo`: mmcv-lite would overwrite mmcv's ops."""
    stub_venv(tmp_path)
    (tmp_path / 'mmcv_state').write_text('ok\n')
    (tmp_path / 'mmcv_state.deps').touch()
    (tmp_path / 'venv' / '.mmpretrain_ebm-setup').write_text('0' * 64 + '\n')
    result = run_setup(tmp_path, 'core', EBM_VENV='venv', CXX='/nonexistent/g++')
    assert result.returncode == 0, result.stderr
    assert 'holds the full mmcv: updating it at the full level' in result.stdout
    assert 'mmcv 2.1.0 with ops is already installed' in result.stdout
    calls = (tmp_path / 'log').read_text()
    assert 'mmcv-lite' not in calls and '.whl' not in calls
    assert f'{PINNED} --no-build-isolation -e {REPO}[tests,seg]\n' in calls
    assert stamp_level(tmp_path / 'venv') == 'full'


def test_an_unknown_level_is_refused_before_anything_is_installed(tmp_path):
    stub_venv(tmp_path)
    for args, message in [
        (
            ('lite',),
            "unknown level 'lite': core (mmcv-lite, no mmsegmentation, no compiler) or full",
        ),
        (('core', 'full'), 'one argument at most (core or full), got 2 (core full)'),
    ]:
        result = run_setup(tmp_path, *args, EBM_VENV='venv')
        assert result.returncode == 1
        assert result.stderr == f'[setup_env] error: {message}\n'
        assert not (tmp_path / 'log').exists()


def test_an_empty_or_unterminated_stamp_is_an_outdated_one_not_a_silent_exit(tmp_path):
    """`read` at end of file fails under `set -e`: an empty stamp, or one without its final
    newline, must count as outdated (the venv is updated), not stop the script silently."""
    for content in ('', 'full ' + '0' * 64):
        stub_venv(tmp_path)
        (tmp_path / 'mmcv_state').write_text('ok\n')
        (tmp_path / 'mmcv_state.deps').touch()
        stamp = tmp_path / 'venv' / '.mmpretrain_ebm-setup'
        stamp.write_text(content)
        result = run_setup(tmp_path, 'core', EBM_VENV='venv', CXX='/nonexistent/g++')
        assert result.returncode == 0, (content, result.stdout, result.stderr)
        assert 'mmcv 2.1.0 with ops is already installed' in result.stdout
        assert stamp_level(tmp_path / 'venv') == 'full'
        # and the next run finds the venv up to date
        again = run_setup(tmp_path, 'core', EBM_VENV='venv', CXX='/nonexistent/g++')
        assert again.stdout.endswith('is up to date (full stack)\n'), again.stdout
