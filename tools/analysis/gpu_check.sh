#!/usr/bin/env bash
# The prepared GPU check: on a machine with one GPU (an H100/H200: Python 3.12, torch 2.11 +
# CUDA 13, Triton, no mm* packages, no network) install the wheels carried in .whl/
# (fetch_gpu_wheels.sh), then the stages below (see the loop at the end), each with its own
# time limit: one training step of ViT-B/16 and then DeiT-S at 224 px, batch 128, bf16 (ours
# exact and compiled, compile time apart in column 1st s; the bare Listing 1 loop; the whole
# step compiled; MAE; img/s, memory, FLOPs per step, MFU), the device tests, and the top
# kernels of the eager and the compiled step (torch.profiler). A stage that would end past
# GPU_CHECK_BUDGET_S (default 570 s after the start: the device tool allows 600 s a command)
# is skipped and says how to rerun it (GPU_CHECK_STAGES='tests profile', for example).
#
#     bash tools/analysis/gpu_check.sh [OUT_DIR]      # default: $OUT, else work_dirs/gpu_check
#
# Writes to OUT_DIR: summary.md (environment, tables, profiles, test summary),
# bench_main.json, bench_small.json, profile_*.txt, tests.txt, cuda_tests.xml, and
# inductor_cache/ (TORCHINDUCTOR_CACHE_DIR): bring it back as .inductor_cache/ in the
# repository (git-ignored; the device tool's `carry`) and a rerun starts from it and skips
# compilation. Without a GPU it is its own dry run: the same stages at tiny sizes on the CPU.
# Environment: PYTHON (default python3), GPU_CHECK_SITE (wheel target, default /tmp/site),
# GPU_CHECK_STAGES (default 'bench_main tests bench_small profile'; opt-in: 'cifar10_study'),
# GPU_CHECK_BUDGET_S.
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

budget=${GPU_CHECK_BUDGET_S:-570}
# run_stage LIMIT NAME COMMAND...: COMMAND under `timeout LIMIT`, unless it could end past
# the budget; its output goes to the terminal and to OUT_DIR/NAME.txt
run_stage() {
    local limit=$1 name=$2 elapsed
    shift 2
    elapsed=$(($(date +%s) - start))
    if ((elapsed + limit > budget)); then
        say "SKIPPED $name: ${elapsed}s spent + its ${limit}s limit > budget ${budget}s"
        printf '\n%s skipped (budget; rerun with GPU_CHECK_STAGES=%s)\n' "$name" "$name" \
            >>"$out/summary.md"
        status=1
        return
    fi
    say "$name (limit ${limit}s): $*"
    timeout "$limit" "$@" >"$out/$name.txt" 2>"$out/$name.err" \
        || { status=1; say "$name FAILED or timed out"; tail -n 5 "$out/$name.err"; }
    cat "$out/$name.txt"
    { echo; echo "## $name"; echo; echo '```'; cat "$out/$name.txt"; echo '```'; } \
        >>"$out/summary.md"
}

# inductor's cache: the carried one (a previous run's) if any, returned under OUT_DIR
case $out in /*) cache="$out/inductor_cache" ;; *) cache="$PWD/$out/inductor_cache" ;; esac
export TORCHINDUCTOR_CACHE_DIR=$cache
if [ -d .inductor_cache ]; then
    say 'starting from the carried .inductor_cache/'
    mkdir -p "$cache" && cp -r .inductor_cache/. "$cache/"
fi

if [ "$device" = cuda ]; then
    sizes=(--img-size 224 --batch-size 128) threads=() main_arch=base small_arch=deit-small
    # each variant starts a fresh process: about 20 s of imports and CUDA start before its
    # first step on an H200 (2026-12-04); compilation adds one to two minutes, once
    limits=(bench_main=330 tests=170 bench_small=150 profile=60 cifar10_pretrain=300
        cifar10_evaluate=540)
    test_select=()
    study_grid=(--long --epochs 10 --workers 8)
    study_runs=(energy_mixed_e10 mae_e10 scratch)
else  # the dry run: tiny sizes, generous limits
    sizes=(--img-size 32 --batch-size 2) threads=(--threads 2) main_arch=deit-tiny small_arch=deit-tiny
    limits=(bench_main=900 tests=1200 bench_small=600 profile=300 cifar10_pretrain=900
        cifar10_evaluate=1200)
    test_select=(-k 'not full_size')
    study_grid=(--quick --epochs 1 --train-images 256 --batch-size 64 --workers 0
        --holdout-per-class 5 --labels-per-class 10 --probe-per-class 20)
    study_runs=(energy_mixed_e1_n256_b64 mae_e1_n256_b64 scratch)
    budget=${GPU_CHECK_BUDGET_S:-5400}
fi
limit() { local pair; for pair in "${limits[@]}"; do [ "${pair%%=*}" = "$1" ] && echo "${pair#*=}"; done; }
bench() {  # bench NAME ARCH VARIANT...
    local name=$1 arch=$2
    shift 2
    run_stage "$(limit "$name")" "$name" "$python" tools/analysis/benchmark_step.py \
        --arch "$arch" "${sizes[@]}" "${threads[@]}" --warmup 2 --steps 5 --device "$device" \
        --variants "$@" --json "$out/$name.json"
}

# Stages in order of what matters most (GPU_CHECK_STAGES picks and orders them):
#   bench_main   ViT-B/16 (dry run: DeiT-tiny): the bare loop, ours exact and compiled, the
#                whole step compiled as one torch.func function, MAE
#   tests        the device tests, tests/test_cuda (grad_mode='compiled' among them)
#   bench_small  DeiT-S: ours exact and compiled
#   profile      the top kernels of ours, exact and compiled, on ViT-B
#   cifar10_study (opt-in) issue 30's long point, tools/analysis/study.py --dataset cifar10
#                --long --epochs 10: pretraining (energy with the configs' mix, then MAE),
#                then downstream of energy, MAE and scratch (fine-tunes with three seeds,
#                probe, all labels) in GPU_CHECK_STUDY_DIR (default work_dirs/
#                cifar10_study_gpu, kept on a warm machine: a rerun resumes), its records
#                copied to OUT_DIR/cifar10_study; no new run starts a minute before the
#                budget. Data: carry data/cifar10-images.tar.gz (19 MiB, from
#                ../shared/data/), unpacked here.
for stage in ${GPU_CHECK_STAGES:-bench_main tests bench_small profile}; do
    case $stage in
    bench_main) bench bench_main "$main_arch" bare-n2 ebm-n2 ebm-n2-compiled bare-step-compiled-n2 mae ;;
    bench_small) bench bench_small "$small_arch" ebm-n2 ebm-n2-compiled ;;
    profile)
        for variant in ebm-n2 ebm-n2-compiled; do
            run_stage "$(limit profile)" "profile_$variant" "$python" \
                tools/analysis/profile_step.py "$variant" --arch "$main_arch" "${sizes[@]}" \
                --device "$device" --top 20
        done
        ;;
    tests)
        run_stage "$(limit tests)" tests "$python" -m pytest tests/test_cuda --device "$device" \
            "${test_select[@]}" -p no:cacheprovider -rfEsx --junitxml="$out/cuda_tests.xml" \
            -W ignore::UserWarning -q
        ;;
    cifar10_study)
        if [ ! -d data/cifar10/train ]; then
            say 'unpacking data/cifar10-images.tar.gz'
            mkdir -p data/cifar10 && tar xzf data/cifar10-images.tar.gz -C data/cifar10 \
                || { say 'no CIFAR-10: carry data/cifar10-images.tar.gz'; status=1; continue; }
        fi
        # the study's folder stays on the machine between calls (a warm machine resumes it);
        # its records are copied to OUT_DIR/cifar10_study after each stage
        study_dir=${GPU_CHECK_STUDY_DIR:-work_dirs/cifar10_study_gpu}
        study=(--dataset cifar10 "${study_grid[@]}" --work-dir "$study_dir")
        keep_records() {
            mkdir -p "$out/cifar10_study"
            cp "$study_dir"/results.{json,md,png} "$out/cifar10_study/" 2>/dev/null
            for run in "$study_dir"/*/knn_history.json; do
                [ -f "$run" ] && cp "$run" "$out/cifar10_study/$(basename "$(dirname "$run")")_knn.json"
            done
        }
        minutes=$(((budget - ($(date +%s) - start)) / 60 - 1))
        run_stage "$(limit cifar10_pretrain)" cifar10_pretrain "$python" tools/analysis/study.py \
            "${study[@]}" --phase pretrain --methods mae energy --no-equal-time \
            --time-limit "$((minutes > 1 ? minutes : 1))"
        keep_records
        left=$((budget - ($(date +%s) - start) - 10))  # the evaluation takes what is left
        run_stage "$((left < $(limit cifar10_evaluate) ? left : $(limit cifar10_evaluate)))" \
            cifar10_evaluate "$python" tools/analysis/study.py "${study[@]}" --phase evaluate \
            --seeds 1 2 --sources "${study_runs[@]}" --time-limit "$((left / 60 > 1 ? left / 60 - 1 : 1))"
        keep_records
        ;;
    *) say "unknown stage '$stage' (bench_main, tests, bench_small, profile, cifar10_study)"; status=1 ;;
    esac
done
say "done, status $status; results in $out"
exit $status
