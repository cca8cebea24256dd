#!/usr/bin/env bash
# The prepared GPU check: on a machine with one GPU (an H200: Python 3.12, torch 2.11 + CUDA 13,
# no mm* packages, no network) install the wheels carried in .whl/ (fetch_gpu_wheels.sh), run
# the device tests (tests/test_cuda --device cuda), then time one training step of DeiT-S and
# ViT-B/16 at 224 px in bf16: ours (exact and finite difference), the bare Listing 1 loop, MAE
# and supervised, with img/s, peak memory, FLOPs per step and MFU. About 8 minutes; every stage
# has a time limit, so the whole stays under 10 (the device tool's limit for one command).
#
#     bash tools/analysis/gpu_check.sh [OUT_DIR]      # default: $OUT, else work_dirs/gpu_check
#
# Writes to OUT_DIR: summary.md (environment, test summary, both tables), cuda_tests.log,
# cuda_tests.xml (JUnit, with the measured AMP errors as properties), step_deit-small.json,
# step_vit-base.json. Without a GPU it is its own dry run: the device tests on the CPU (the
# full-size ones left out) and the benchmarks at tiny sizes.
# Environment: PYTHON (default python3), GPU_CHECK_SITE (wheel target, default /tmp/site).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-${OUT:-work_dirs/gpu_check}}
mkdir -p "$out"
python=${PYTHON:-python3}
site=${GPU_CHECK_SITE:-/tmp/site}
start=$(date +%s)
status=0
say() { echo "[gpu_check +$(($(date +%s) - start))s] $*"; }
export PYTHONUNBUFFERED=1

say "installing the carried wheels into $site"
if compgen -G '.whl/*.whl' >/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" .whl/*.whl || { say 'wheel install failed'; exit 1; }
    export PYTHONPATH="$site"
else
    say 'no .whl/*.whl: using the installed mm* packages'
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

say 'environment'
"$python" - >"$out/summary.md" <<'PY' || { cat "$out/summary.md"; say 'imports failed'; exit 1; }
import platform, time, torch, mmengine, mmcv, mmpretrain, mmpretrain_ebm
print('# GPU check\n')
print(f'python {platform.python_version()}, torch {torch.__version__}, mmengine '
      f'{mmengine.__version__}, mmcv {mmcv.__version__}, mmpretrain {mmpretrain.__version__}, '
      f'mmpretrain_ebm from {mmpretrain_ebm.__file__}')
if torch.cuda.is_available():
    print(f'device: {torch.cuda.get_device_name()}, CUDA {torch.version.cuda}, '
          f'{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB')
    a = torch.randn(8192, 8192, device='cuda', dtype=torch.bfloat16)
    for _ in range(3):
        a @ a
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(10):
        a @ a
    torch.cuda.synchronize()
    rate = 10 * 2 * 8192**3 / (time.perf_counter() - t) / 1e12
    print(f'bf16 8192^3 matmul: {rate:.0f} TFLOP/s measured (MFU below divides by the '
          'datasheet 989.4)')
else:
    print('device: no CUDA device, CPU dry run at tiny sizes')
PY
cat "$out/summary.md"
device=$("$python" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')

say "device tests (--device $device)"
select=() test_limit=170
[ "$device" = cpu ] && select=(-k 'not full_size') test_limit=1200
timeout "$test_limit" "$python" -m pytest tests/test_cuda --device "$device" "${select[@]}" -v \
    -p no:cacheprovider -rfEsx --junitxml="$out/cuda_tests.xml" -W ignore::UserWarning \
    2>&1 | tee "$out/cuda_tests.log" | grep -E --line-buffered '(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)|[0-9]+ (passed|failed)' 
[ "${PIPESTATUS[0]}" = 0 ] || { status=1; say 'device tests FAILED (see cuda_tests.log)'; }
{ echo; echo '## Device tests'; echo; echo '```'; tail -n 25 "$out/cuda_tests.log"; echo '```'; } >>"$out/summary.md"

variants=(bare-n2 ebm-n2 ebm-n2-fd mae supervised)
if [ "$device" = cuda ]; then
    sizes=(--img-size 224 --batch-size 128 --warmup 2 --steps 5)
    # each variant starts a fresh process: about 20 s of imports and CUDA start before its
    # first step on an H200 (measured 2026-12-04; 110 s was too short for DeiT-S's five)
    runs=('deit-small 200' 'base 220')
else
    sizes=(--img-size 32 --batch-size 2 --warmup 1 --steps 5 --threads 2)
    runs=('deit-tiny 900')
fi
for run in "${runs[@]}"; do
    read -r arch limit <<<"$run"
    name=$([ "$arch" = base ] && echo vit-base || echo "$arch")
    say "benchmark_step.py --arch $arch ${sizes[*]} --device $device (limit ${limit}s)"
    timeout "$limit" "$python" tools/analysis/benchmark_step.py --arch "$arch" "${sizes[@]}" \
        --device "$device" --variants "${variants[@]}" --json "$out/step_$name.json" \
        >"$out/step_$name.txt" || { status=1; say "benchmark $arch FAILED or timed out"; }
    cat "$out/step_$name.txt"
    { echo; echo "## $name"; echo; echo '```'; cat "$out/step_$name.txt"; echo '```'; } \
        >>"$out/summary.md"
    rm -f "$out/step_$name.txt"
done
say "done, status $status; results in $out"
exit $status
