#!/usr/bin/env bash
# The second tested stack: mmpretrain_ebm installed into an OpenMMLab environment as a user
# has it, not into our pinned venv. Builds that environment afresh, installs the package into
# it, checks that this changed none of the packages already there, then runs the test suite
# (the mmseg tests skip: mmcv-lite has no compiled ops and no mmsegmentation is installed).
#
#   bash tools/test_user_stack.sh [PYTEST ARGS]       # or: make test-user-stack
#
# About 3 minutes of installs (a CUDA build of torch from the registry; it runs on CPU), then
# the suite. Not part of CI (time); the GPU machines that benchmark the project run this stack.
#
# Environment variables:
#   EBM_USER_VENV         the venv, recreated empty on every run
#                         (default: ~/.cache/mmpretrain_ebm/venv-user-stack)
#   EBM_USER_PYTHON       the interpreter that creates it         (default: python3.12)
#   EBM_USER_TORCH        torch version                           (default: 2.11.0)
#   EBM_USER_TORCHVISION  torchvision version                     (default: 0.26.0)
#   EBM_USER_OPENMMLAB    the rest of the user's stack, as pip requirements
#                         (default: mmcv-lite, mmengine and mmpretrain in the ranges that
#                         mmpretrain_ebm/utils/requirements.py declares)
set -euo pipefail

say() { printf '[user_stack] %s\n' "$*"; }
fail() { printf '[user_stack] error: %s\n' "$*" >&2; exit 1; }
absolute() { [[ $1 == /* ]] && printf '%s\n' "$1" || printf '%s\n' "$PWD/$1"; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(absolute "${EBM_USER_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/mmpretrain_ebm/venv-user-stack}")"
BASE="${EBM_USER_PYTHON:-python3.12}"
TORCH="${EBM_USER_TORCH:-2.11.0}"
TORCHVISION="${EBM_USER_TORCHVISION:-0.26.0}"

"$BASE" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || fail "'$BASE' does not run a Python >= 3.11 with venv; set EBM_USER_PYTHON to one"
[[ "$VENV" != "$ROOT/.venv" ]] || fail "EBM_USER_VENV is the project's own venv; choose another"
# the declared ranges of mmcv (as mmcv-lite), mmengine and mmpretrain, read as setup.py does
DECLARED=$("$BASE" - "$ROOT/mmpretrain_ebm/utils/requirements.py" <<'PYEOF'
import ast, sys
for node in ast.parse(open(sys.argv[1]).read()).body:
    if isinstance(node, ast.AnnAssign) and node.target.id == 'REQUIREMENTS':
        ranges = ast.literal_eval(node.value)
for name, distribution in (('mmcv', 'mmcv-lite'), ('mmengine', 'mmengine'), ('mmpretrain', 'mmpretrain')):
    print(f'{distribution}>={ranges[name][1]},<{ranges[name][2]}')
PYEOF
)
read -r -a OPENMMLAB <<<"${EBM_USER_OPENMMLAB:-$(echo $DECLARED)}"
say "creating an empty venv $VENV with $BASE ($("$BASE" --version 2>&1))"
"$BASE" -m venv --clear "$VENV"
PY="$VENV/bin/python"
pip() { "$PY" -m pip --disable-pip-version-check "$@"; }

say "the user's stack: torch==$TORCH torchvision==$TORCHVISION ${OPENMMLAB[*]}"
pip install --progress-bar off "torch==$TORCH" "torchvision==$TORCHVISION" "${OPENMMLAB[@]}"
BEFORE="$VENV/freeze-before.txt"
AFTER="$VENV/freeze-after.txt"
pip freeze >"$BEFORE"

say "pip install -e '$ROOT[tests]' (it must leave every package above as it is)"
pip install --progress-bar off -e "$ROOT[tests]"
pip freeze >"$AFTER"
CHANGED=$(comm -23 <(sort "$BEFORE") <(sort "$AFTER"))
[[ -z "$CHANGED" ]] || fail "the install changed or removed these packages of the user's stack:
$CHANGED"
say "unchanged: all $(wc -l <"$BEFORE") packages; added: $(comm -13 <(sort "$BEFORE") <(sort "$AFTER") | grep -v '^#' | tr '\n' ' ')"
"$PY" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("mmseg") is not None)' \
    || fail "mmsegmentation is installed in $VENV; this stack is the one without it"

say "running the test suite (the mmseg tests skip)"
cd "$ROOT"
"$PY" -m pytest "${@:-tests}"
