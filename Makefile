# The two commands of the README's quick start; each sets up .venv first (idempotent).
VENV ?= .venv
PYTHON := $(VENV)/bin/python
export EBM_VENV := $(abspath $(VENV))

.PHONY: env demo test

env:
	bash tools/setup_env.sh

# A short pretraining on real photographs shipped with scikit-image; writes a checkpoint and
# a PNG of restoration chains under work_dirs/demo.
demo: env
	$(PYTHON) tools/dataset_converters/prepare_demo_data.py data/demo
	$(PYTHON) tools/train.py configs/ebm/ebm_vit-mini-p8_1xb16-mixed-coslr-400i_skimage-64px.py --work-dir work_dirs/demo

test: env
	$(PYTHON) -m pytest tests
