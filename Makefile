# The two commands of the README's quick start; each sets up the venv first (idempotent).
# EBM_VENV (environment or `make EBM_VENV=...`) picks the venv; the user's PYTHON is left alone
# (the launchers in tools/ read it), so the venv's interpreter has its own name here.
EBM_VENV ?= .venv
VENV_DIR := $(abspath $(EBM_VENV))
VENV_PYTHON := $(VENV_DIR)/bin/python

.PHONY: env env-core seg demo test lint docs test-user-stack

# Two levels of one set-up script (tools/setup_env.sh): the core stack (torch, mmengine,
# mmpretrain, mmcv-lite; no compiler) for the demo and the linters, the full stack (mmcv with
# its compiled ops, built once and cached, in place of mmcv-lite, and mmsegmentation) for the
# test suite and the ADE20K transfer. A venv at the full level satisfies the core level.
env-core:
	EBM_VENV='$(VENV_DIR)' bash tools/setup_env.sh core

env:
	EBM_VENV='$(VENV_DIR)' bash tools/setup_env.sh full

# only the set-up of the segmentation stack (what `make test` installs), without the tests
seg: env

# A short pretraining on real photographs shipped with scikit-image; writes a checkpoint and
# PNGs of restoration chains under work_dirs/demo, then prints the held-out gain of each
# corruption and where the figures are.
demo: env-core
	'$(VENV_PYTHON)' tools/dataset_converters/prepare_demo_data.py data/demo
	'$(VENV_PYTHON)' tools/train.py configs/ebm/ebm_vit-mini-p8_1xb16-mixed-coslr-400i_skimage-64px.py --work-dir work_dirs/demo
	'$(VENV_PYTHON)' tools/analysis/restoration_summary.py work_dirs/demo

test: env
	'$(VENV_PYTHON)' -m pytest tests

# Formatter and linter settings: ruff.toml (also run as pre-commit hooks).
lint: env-core
	'$(VENV_PYTHON)' -m ruff check .
	'$(VENV_PYTHON)' -m ruff format --check .

# The documentation site (mkdocs.yml: docs/ into work_dirs/site). The pinned mkdocs of
# requirements/constraints.txt is installed into the venv only when it is not there yet (the
# stack's pins constrain its dependencies); --strict makes a broken link or anchor an error.
MKDOCS_PIN = $(shell grep -E '^mkdocs==' requirements/constraints.txt)
docs: env-core
	'$(VENV_PYTHON)' -c "import importlib.metadata as m, sys; sys.exit(m.version('mkdocs') != '$(MKDOCS_PIN)'.split('==')[1])" 2>/dev/null \
		|| '$(VENV_PYTHON)' -m pip install --disable-pip-version-check --progress-bar off -c requirements/constraints.txt '$(MKDOCS_PIN)'
	'$(VENV_PYTHON)' -m mkdocs build --strict --clean

# The second tested stack (not in CI): a fresh Python 3.12 venv with torch 2.11 from the
# registry, mmcv-lite, mmengine and mmpretrain, this package installed into it with pip
# (which must change none of them), then the suite. EBM_USER_* variables: see the script.
test-user-stack:
	bash tools/test_user_stack.sh
