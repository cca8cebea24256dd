#!/usr/bin/env bash
# Create (or update) the project's virtual environment at the exact versions of
# requirements/constraints.txt (setup.py itself declares ranges), at one of two levels:
#
#   bash tools/setup_env.sh core   # torch, torchvision, mmengine, mmpretrain, mmcv-lite and
#                                  # this package with its tests extra; no compiler needed
#                                  # (make demo, make lint)
#   bash tools/setup_env.sh [full] # the core stack with the full mmcv (compiled ops, built once
#                                  # and cached) in place of mmcv-lite, and mmsegmentation
#                                  # (make test, make seg, CI)
#
# Idempotent: seconds when nothing changed. A venv never goes down a level: `core` in a venv
# that holds the full stack installs nothing (or, after a change of the inputs, updates it at
# the full level).
#
# Prerequisites: Python >= 3.11 with its venv module, and, only when mmcv must be built,
# the Python headers (python3.11-dev) and g++ >= 10 (C++20).
#
# Environment variables:
#   EBM_VENV         where the virtual environment lives         (default: <repo>/.venv)
#   EBM_CACHE        where built mmcv wheels are kept across     (default: ~/.cache/mmpretrain_ebm)
#                    fresh clones, in wheels/<python tag>-torch<version>-<cpu|cuXXX>/
#   EBM_BASE_PYTHON  the interpreter that creates the venv       (default: python3.11, else python3)
#
# mmcv 2.1.0 (full, with ops) exists only as an sdist; building it against torch 2.14 needs
# three fixes, all applied here: setuptools < 82 (its setup.py imports pkg_resources),
# --no-build-isolation for every pip step that touches the sdist, and C++20 instead of the
# C++17 that its setup.py hard-codes (torch 2.14's headers require C++20).
set -euo pipefail

say() { printf '[setup_env] %s\n' "$*"; }
fail() { printf '[setup_env] error: %s\n' "$*" >&2; exit 1; }
absolute() { [[ $1 == /* ]] && printf '%s\n' "$1" || printf '%s\n' "$PWD/$1"; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(absolute "${EBM_VENV:-$ROOT/.venv}")"
CACHE="$(absolute "${EBM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmpretrain_ebm}")"
CONSTRAINTS="$ROOT/requirements/constraints.txt"  # the pinned stack, applied to every install
[[ -f "$CONSTRAINTS" ]] || fail "the pinned stack $CONSTRAINTS is missing"
pinned() {  # the version that $CONSTRAINTS pins distribution $1 to
    local line
    while IFS= read -r line || [[ -n $line ]]; do  # a last line without newline too
        [[ $line == "$1=="* ]] && { line=${line#"$1=="}; printf '%s\n' "${line%%[ ;#]*}"; return; }
    done <"$CONSTRAINTS"
    fail "$CONSTRAINTS pins no $1"
}
LEVEL=${1:-full}
(( $# <= 1 )) || fail "one argument at most (core or full), got $# ($*)"
[[ $LEVEL == core || $LEVEL == full ]] \
    || fail "unknown level '$LEVEL': core (mmcv-lite, no mmsegmentation, no compiler) or full"
MMCV_VERSION=$(pinned mmcv)
MMCV_LITE_VERSION=$(pinned mmcv-lite)
MIN_PYTHON=3.11  # setup.py's python_requires
TORCH_PINS=("torch==$(pinned torch)" "torchvision==$(pinned torchvision)")
SETUPTOOLS_PIN='setuptools>=77.0.3,<82'
MIN_GXX=10  # first g++ with -std=c++20

# The stamp records the level and the inputs of the last successful install ("full <sha256>");
# equal inputs at that level or above mean nothing to do.
inputs_hash() {
    cat "$ROOT/setup.py" "$ROOT/mmpretrain_ebm/utils/requirements.py" "$CONSTRAINTS" \
        "$ROOT/tools/setup_env.sh" | sha256sum | cut -d' ' -f1
}
STAMP="$VENV/.mmpretrain_ebm-setup"
STAMP_LEVEL= STAMP_HASH=
# `read` fails at end of file (an empty stamp, or one without its final newline) after setting
# what it read: under `set -e` that must not end the script, the stamp is then just outdated
if [[ -f "$STAMP" ]]; then read -r STAMP_LEVEL STAMP_HASH _ <"$STAMP" || true; fi
if [[ $STAMP_HASH == "$(inputs_hash)" && ($STAMP_LEVEL == full || $LEVEL == core) ]]; then
    say "environment $VENV is up to date ($STAMP_LEVEL stack)"
    exit 0
fi

# Fails unless interpreter $1 (described by $2) runs Python >= MIN_PYTHON; $3 says what to do.
check_python() {
    local version major minor
    version=$("$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) \
        || fail "$2 '$1' cannot be run; Python >= $MIN_PYTHON is needed: $3"
    IFS=. read -r major minor _ <<<"$version"
    (( major > ${MIN_PYTHON%.*} || (major == ${MIN_PYTHON%.*} && minor >= ${MIN_PYTHON#*.}) )) \
        || fail "$2 '$1' is Python $version; mmpretrain_ebm needs Python >= $MIN_PYTHON: $3"
}

PY="$VENV/bin/python"
if [[ ! -x "$PY" ]]; then
    BASE="${EBM_BASE_PYTHON:-$(command -v python3.11 || command -v python3 || true)}"
    [[ -n "$BASE" ]] || fail "neither python3.11 nor python3 is on PATH; install Python >= $MIN_PYTHON or set EBM_BASE_PYTHON to one"
    check_python "$BASE" "the base interpreter" "set EBM_BASE_PYTHON to one"
    "$BASE" -c 'import ensurepip, venv' 2>/dev/null \
        || fail "'$BASE' lacks the venv module (Debian/Ubuntu: apt install python3.11-venv)"
    say "creating virtual environment $VENV with $BASE"
    "$BASE" -m venv "$VENV"
fi
check_python "$PY" "the venv's interpreter" "delete $VENV or set EBM_VENV to another folder"
pip_install() { "$PY" -m pip install --disable-pip-version-check --progress-bar off "$@"; }
pinned_install() { pip_install -c "$CONSTRAINTS" "$@"; }

# Which distributions of mmcv the venv holds: mmcv (full) and mmcv-lite install the same
# import package, so the venv must never hold both.
mmcv_distributions() {
    "$PY" - distributions <<'PYEOF'
from importlib import metadata
for name in ('mmcv', 'mmcv-lite'):
    try:
        metadata.version(name)
        print(name)
    except metadata.PackageNotFoundError:
        pass
PYEOF
}
if [[ $LEVEL == core ]] && mmcv_distributions | grep -qx mmcv; then
    say "$VENV holds the full mmcv: updating it at the full level instead of replacing it"
    LEVEL=full
fi
rm -f "$STAMP"  # until this run succeeds

say "installing ${TORCH_PINS[*]} (about a minute the first time)"
pinned_install "${TORCH_PINS[@]}"
# torch pulls a setuptools >= 82, which no longer ships pkg_resources; mmcv's setup.py needs it
# (and the editable install below runs without build isolation on the venv's setuptools).
if [[ $LEVEL == core ]]; then
    say "pinning $SETUPTOOLS_PIN"
    pip_install "$SETUPTOOLS_PIN"
    say "installing mmpretrain_ebm and its dependencies at the pins of $CONSTRAINTS"
    say "(editable, with the tests extra), with mmcv-lite $MMCV_LITE_VERSION: no compiled ops"
    pinned_install --no-build-isolation -e "$ROOT[tests]" "mmcv-lite==$MMCV_LITE_VERSION"
    "$PY" -c "import mmcv, mmpretrain, mmpretrain_ebm; print('[setup_env] core stack OK: mmcv-lite', mmcv.__version__, '| mmpretrain', mmpretrain.__version__, '| mmpretrain_ebm', mmpretrain_ebm.__version__)"
    printf '%s %s\n' core "$(inputs_hash)" >"$STAMP"
    say "done: activate with 'source $VENV/bin/activate'; 'make test' or 'make seg' adds mmcv's"
    say "compiled ops and mmsegmentation (the ADE20K transfer)"
    exit 0
fi
say "pinning $SETUPTOOLS_PIN, wheel and ninja for the mmcv build"
pip_install "$SETUPTOOLS_PIN" wheel ninja

mmcv_installed() {
    "$PY" - mmcv-check "$MMCV_VERSION" <<'PYEOF'
import sys
try:
    import mmcv, mmcv.ops  # noqa: F401  (the ops are what mmseg needs)
except Exception as error:
    sys.exit(f'[setup_env] mmcv with ops does not import: {error!r}')
sys.exit(0 if mmcv.__version__ == sys.argv[2] else f'[setup_env] mmcv is {mmcv.__version__}')
PYEOF
}

install_mmcv_wheel() {  # installs wheel $1 in place of mmcv-lite or an older mmcv
    if mmcv_distributions | grep -qx mmcv-lite; then
        say "replacing mmcv-lite (no ops) with the full mmcv: both provide the mmcv package"
        "$PY" -m pip uninstall --disable-pip-version-check -y mmcv-lite
    fi
    pip_install --no-deps --force-reinstall "$1"
}

# Fails unless the mmcv build's prerequisites are there: Python headers and g++ >= MIN_GXX.
check_build_tools() {
    "$PY" -c 'import os, sys, sysconfig; sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
        || fail "no Python.h for $PY; building mmcv needs the Python headers (Debian/Ubuntu: apt install python3.11-dev)"
    local cxx="${CXX:-g++}" version
    command -v "$cxx" >/dev/null \
        || fail "C++ compiler '$cxx' not found; building mmcv needs g++ >= $MIN_GXX (Debian/Ubuntu: apt install g++) or CXX set to one"
    version=$("$cxx" -dumpversion 2>/dev/null || true)
    [[ "${version%%.*}" =~ ^[0-9]+$ ]] && (( ${version%%.*} >= MIN_GXX )) \
        || fail "C++ compiler '$cxx' is version '${version:-unknown}'; building mmcv needs g++ >= $MIN_GXX (C++20)"
}

build_mmcv() {  # builds the wheel into folder $1 and installs it
    check_build_tools
    say "building mmcv $MMCV_VERSION with ops from source: about 7 minutes on 2 cores;"
    say "the wheel is kept in $1 so that later set-ups skip this step"
    BUILD=$(mktemp -d)
    trap 'rm -rf "$BUILD"' EXIT
    # setup.py runs even for a download, hence --no-build-isolation (it imports torch).
    "$PY" -m pip download --disable-pip-version-check --no-deps --no-binary :all: \
        --no-build-isolation -d "$BUILD" "mmcv==$MMCV_VERSION"
    tar -xzf "$BUILD/mmcv-$MMCV_VERSION.tar.gz" -C "$BUILD"
    local src="$BUILD/mmcv-$MMCV_VERSION"
    grep -q -- '-std=c++17' "$src/setup.py" || fail "mmcv setup.py has no -std=c++17 flag to patch"
    sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
    (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS="$(nproc)" "$PY" -m pip wheel \
        --disable-pip-version-check --no-deps --no-build-isolation -w "$1" .)
    install_mmcv_wheel "$(ls "$1"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)"
}

CACHED_WHEEL=
if mmcv_installed 2>/dev/null; then
    say "mmcv $MMCV_VERSION with ops is already installed"
else
    # mmcv builds its ops for CUDA when torch sees a GPU or FORCE_CUDA=1, else for the CPU; a
    # wheel fits only the same Python tag, torch version and ops build, hence one folder each.
    WHEELS="$CACHE/wheels/$("$PY" -c 'import os, sys, torch
gpu = torch.cuda.is_available() or os.environ.get("FORCE_CUDA") == "1"
ops = "cu" + torch.version.cuda.replace(".", "") if gpu and torch.version.cuda else "cpu"
print(f"cp{sys.version_info[0]}{sys.version_info[1]}-torch{torch.__version__}-{ops}")')"
    mkdir -p "$WHEELS"
    CACHED_WHEEL=$(ls "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)
    if [[ -n "$CACHED_WHEEL" ]]; then
        say "using the cached mmcv wheel $CACHED_WHEEL"
        install_mmcv_wheel "$CACHED_WHEEL"
    else
        build_mmcv "$WHEELS"
    fi
fi

say "installing mmpretrain_ebm and its dependencies at the pins of $CONSTRAINTS"
say "(editable, with the tests and seg extras)"
pinned_install --no-build-isolation -e "$ROOT[tests,seg]"
# Only now are mmcv's own dependencies (opencv, mmengine, ...) there to import it with.
if [[ -n "$CACHED_WHEEL" ]] && ! mmcv_installed; then
    say "the cached wheel does not work in $VENV: removing it and rebuilding"
    rm -f "$CACHED_WHEEL"
    build_mmcv "$WHEELS"
fi
"$PY" -c "import mmcv.ops, mmpretrain, mmseg, mmpretrain_ebm; print('[setup_env] full stack OK: mmcv', mmcv.__version__, '| mmpretrain', mmpretrain.__version__, '| mmseg', mmseg.__version__, '| mmpretrain_ebm', mmpretrain_ebm.__version__)"
printf '%s %s\n' full "$(inputs_hash)" >"$STAMP"
say "done: activate with 'source $VENV/bin/activate'"
