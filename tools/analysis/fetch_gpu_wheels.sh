#!/usr/bin/env bash
# Download into .whl/ (git-ignored) the wheels that tools/analysis/gpu_check.sh installs on a
# GPU machine that has Python 3.12, torch 2.11 + torchvision 0.26 and no network: the OpenMMLab
# stack and those of its pure-Python dependencies that the machine's image lacks (it has numpy,
# pillow, opencv-python-headless, matplotlib, pyyaml, rich, einops, packaging, scikit-image,
# pytest, pytest-timeout, tqdm). One version of each; about 3.5 MiB in all.
#
#     bash tools/analysis/fetch_gpu_wheels.sh [DEST]      # DEST defaults to .whl
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=${1:-.whl}
wheels=(
    mmengine==0.10.7
    mmpretrain==1.2.0
    mmcv-lite==2.1.0
    # mmengine, mmcv
    addict==2.4.0
    termcolor==3.1.0
    yapf==0.43.0
    platformdirs==4.3.8
    # mmpretrain
    mat4py==0.6.0
    model-index==0.1.11  # the module modelindex (the package modelindex is an empty shim)
    ordered-set==4.1.0
    importlib-metadata==8.7.0
)
mkdir -p "$dest"
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d "$dest" "${wheels[@]}"
du -sh "$dest"
