#!/usr/bin/env bash
# Create (or update) the project's virtual environment with the whole OpenMMLab stack.
#
#   bash tools/setup_env.sh            # idempotent: seconds when nothing changed
#
# Environment variables:
#   EBM_VENV   where the virtual environment lives       (default: <repo>/.venv)
#   EBM_CACHE  where the built mmcv wheel is kept across  (default: ~/.cache/mmpretrain_ebm)
#              fresh clones, so that mmcv is built once per machine
#   PYTHON     the interpreter that creates the venv      (default: python3.11, else python3)
#
# mmcv 2.1.0 (full, with ops) exists only as an sdist; building it against torch 2.14 needs
# three fixes, all applied here: setuptools < 82 (its setup.py imports pkg_resources),
# --no-build-isolation for every pip step that touches the sdist, and C++20 instead of the
# C++17 that its setup.py hard-codes (torch 2.14's headers require C++20).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${EBM_VENV:-$ROOT/.venv}"
CACHE="${EBM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmpretrain_ebm}"
MMCV_VERSION=2.1.0
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)
SETUPTOOLS_PIN='setuptools>=77.0.3,<82'

say() { printf '[setup_env] %s\n' "$*"; }

# The stamp records the inputs of the last successful install; equal inputs mean nothing to do.
inputs_hash() {
    cat "$ROOT/setup.py" "$ROOT/tools/setup_env.sh" | sha256sum | cut -d' ' -f1
}
STAMP="$VENV/.mmpretrain_ebm-setup"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(inputs_hash)" ]]; then
    say "environment $VENV is up to date"
    exit 0
fi

if [[ -z "${PYTHON:-}" ]]; then
    PYTHON=$(command -v python3.11 || command -v python3)
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating virtual environment $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
pip_install() { "$PY" -m pip install --disable-pip-version-check --progress-bar off "$@"; }

say "installing ${TORCH_PINS[*]} (about a minute the first time)"
pip_install "${TORCH_PINS[@]}"
# torch pulls a setuptools >= 82, which no longer ships pkg_resources; mmcv's setup.py needs it.
say "pinning $SETUPTOOLS_PIN, wheel and ninja for the mmcv build"
pip_install "$SETUPTOOLS_PIN" wheel ninja

mmcv_installed() {
    "$PY" - "$MMCV_VERSION" <<'EOF'
import sys
try:
    import mmcv, mmcv.ops  # noqa: F401  (the ops are what mmseg needs)
except Exception:
    sys.exit(1)
sys.exit(0 if mmcv.__version__ == sys.argv[1] else 1)
EOF
}

if mmcv_installed; then
    say "mmcv $MMCV_VERSION with ops is already installed"
else
    mkdir -p "$CACHE/wheels"
    WHEEL=$(ls "$CACHE"/wheels/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)
    if [[ -z "$WHEEL" ]]; then
        say "building mmcv $MMCV_VERSION with ops from source: about 12 minutes on 2 cores;"
        say "the wheel is kept in $CACHE/wheels so that later set-ups skip this step"
        BUILD=$(mktemp -d)
        trap 'rm -rf "$BUILD"' EXIT
        # setup.py runs even for a download, hence --no-build-isolation (it imports torch).
        "$PY" -m pip download --disable-pip-version-check --no-deps --no-binary :all: \
            --no-build-isolation -d "$BUILD" "mmcv==$MMCV_VERSION"
        tar -xzf "$BUILD/mmcv-$MMCV_VERSION.tar.gz" -C "$BUILD"
        SRC="$BUILD/mmcv-$MMCV_VERSION"
        grep -q -- '-std=c++17' "$SRC/setup.py" || { say "mmcv setup.py has no -std=c++17 flag to patch"; exit 1; }
        sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
        (cd "$SRC" && MMCV_WITH_OPS=1 MAX_JOBS="$(nproc)" "$PY" -m pip wheel \
            --disable-pip-version-check --no-deps --no-build-isolation -w "$CACHE/wheels" .)
        WHEEL=$(ls "$CACHE"/wheels/mmcv-"$MMCV_VERSION"-*.whl | head -n1)
    else
        say "using the cached mmcv wheel $WHEEL"
    fi
    pip_install --no-deps "$WHEEL"
fi

say "installing mmpretrain_ebm and its pinned dependencies (editable, with the tests extra)"
pip_install --no-build-isolation -e "$ROOT[tests]"
"$PY" -c "import mmcv.ops, mmpretrain, mmseg, mmpretrain_ebm; print('[setup_env] stack OK: mmcv', mmcv.__version__, '| mmpretrain', mmpretrain.__version__, '| mmseg', mmseg.__version__, '| mmpretrain_ebm', mmpretrain_ebm.__version__)"
inputs_hash > "$STAMP"
say "done: activate with 'source $VENV/bin/activate'"
