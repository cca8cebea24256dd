# The two commands of the README's quick start; each sets up the venv first (idempotent).
# EBM_VENV (environment or `make EBM_VENV=...`) picks the venv; the user's PYTHON is left alone
# (the launchers in tools/ read it), so the venv's interpreter has its own name here.
EBM_VENV ?= .venv
VENV_DIR := $(abspath $(EBM_VENV))
VENV_PYTHON := $(VENV_DIR)/bin/python

.PHONY: env demo test lint test-user-stack

env:
	EBM_VENV='$(VENV_DIR)' bash tools/setup_env.sh

# A short pretraining on real photographs shipped with scikit-image; writes a checkpoint and
# a PNG of restoration chains under work_dirs/demo.
demo: env
	'$(VENV_PYTHON)' tools/dataset_converters/prepare_demo_data.py data/demo
	'$(VENV_PYTHON)' tools/train.py configs/ebm/ebm_vit-mini-p8_1xb16-mixed-coslr-400i_skimage-64px.py --work-dir work_dirs/demo

test: env
	'$(VENV_PYTHON)' -m pytest tests

# Formatter and linter settings: ruff.toml (also run as pre-commit hooks).
lint: env
	'$(VENV_PYTHON)' -m ruff check .
	'$(VENV_PYTHON)' -m ruff format --check .

# The second tested stack (not in CI): a fresh Python 3.12 venv with torch 2.11 from the
# registry, mmcv-lite, mmengine and mmpretrain, this package installed into it with pip
# (which must change none of them), then the suite. EBM_USER_* variables: see the script.
test-user-stack:
	bash tools/test_user_stack.sh
