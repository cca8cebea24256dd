"""Speed and peak memory of one pretraining step: ours, a bare Listing 1 loop, MAE, supervised.

    python tools/analysis/benchmark_step.py [CONFIG] [--backbone vit --arch deit-small]
        [--img-size 224] [--batch-size 8] [--device cpu|cuda] [--steps 5] [--warmup 2]
        [--variants ...] [--repeats 1] [--json out.json]

Each variant runs in a fresh subprocess, so peaks of different variants do not mix: after
``--warmup`` steps, ``--steps`` timed steps (median reported, images/s = batch / median).
``--repeats R`` runs the whole list R times, variants interleaved, and reports the median of
all R x steps timings and of the R peaks: on a shared machine slow phases then hit every
variant alike instead of one. ``min s`` is the fastest timed step, the figure least moved by
other jobs on a shared machine; ``1st s`` the first warm-up step, which includes
``grad_mode='compiled'``'s compilation (from inductor's on-disk cache on a rerun).
Memory: on CPU the process's peak RSS (``peak``), that peak minus the RSS before the first
step (``step``: gradients, optimizer state and the step's graphs), and ``alloc``, the most
bytes held by live tensors during one extra profiled step (the CPU analogue of CUDA's
``max_memory_allocated``: no libraries, no allocator slack); on CUDA
``max_memory_allocated`` and the same difference. On CUDA every variant runs under bf16
autocast (``AmpOptimWrapper(dtype='bfloat16')`` for the mmengine ones).

Model FLOP utilization: one more step runs under a dispatch mode that applies
``torch.utils.flop_counter``'s formulas to the matrix products, convolutions and attention of
everything the step executes (forward, inner and outer backward; elementwise ops not
counted): ``TFLOP/step``,
and ``MFU`` = that count / median step time / ``--peak-tflops`` (default on an H100 or H200:
989.4, their dense bf16 rate by the datasheet; else no MFU unless given).

Variants: see :mod:`step_variants` (``--variants`` lists them; the default is all of them,
``mae`` only on a ViT). A variant that fails shows its error in the table, and the tool
then exits with status 1.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
from step_variants import BACKBONES, VARIANTS, build_variant, default_variants

REPO = Path(__file__).resolve().parents[2]

REFERENCE = 'bare-n2'

#: Dense bf16 tensor-core peak (TFLOP/s, datasheet, SXM) by CUDA device name.
PEAK_BF16_TFLOPS = {'H100': 989.4, 'H200': 989.4}


def default_peak_tflops(device: str) -> Optional[float]:
    """The datasheet bf16 peak of the CUDA device, None elsewhere."""
    if device != 'cuda':
        return None
    name = torch.cuda.get_device_name()
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in name), None)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'config', nargs='?', help='pretraining config (default: built from --backbone and --arch)'
    )
    parser.add_argument('--backbone', choices=tuple(BACKBONES), default='vit')
    parser.add_argument(
        '--arch',
        default='deit-small',
        help="backbone arch (default %(default)s; e.g. 'base' for ViT-B, 'tiny' for ConvNeXt/Swin)",
    )
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--steps', type=int, default=5, help='timed steps (median; >= 5)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps first')
    parser.add_argument(
        '--variants',
        nargs='+',
        choices=VARIANTS,
        metavar='VARIANT',
        help=f'any of {", ".join(VARIANTS)} (default: all; mae only on a ViT)',
    )
    parser.add_argument(
        '--repeats',
        type=int,
        default=1,
        help='run every variant this many times, interleaved (default 1)',
    )
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument(
        '--peak-tflops',
        type=float,
        help='peak rate for the MFU column (default: bf16 datasheet peak of an H100/H200)',
    )
    parser.add_argument('--json', type=Path, help='also write the results to this file')
    parser.add_argument('--run-variant', help=argparse.SUPPRESS)  # child process
    args = parser.parse_args(argv)
    if args.steps < 5:
        parser.error(f'--steps must be >= 5 (a median of at least 5), got {args.steps}')
    if args.warmup < 1:
        parser.error(f'--warmup must be >= 1 (the first step allocates state), got {args.warmup}')
    if args.repeats < 1:
        parser.error(f'--repeats must be >= 1, got {args.repeats}')
    if args.batch_size < 1 or args.img_size < 16:
        parser.error('--batch-size must be >= 1 and --img-size >= 16')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    if args.config and not Path(args.config).is_file():
        parser.error(f'no such config: {args.config}')
    if args.peak_tflops is not None and not args.peak_tflops > 0:
        parser.error(f'--peak-tflops must be > 0, got {args.peak_tflops}')
    if args.variants is None:
        args.variants = list(default_variants(args))
    if args.peak_tflops is None and not args.run_variant:
        args.peak_tflops = default_peak_tflops(args.device)
    return args


# ---------------------------------------------------------------------------- measuring
def current_rss_mib() -> float:
    with open('/proc/self/statm') as statm:
        return int(statm.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def allocated_peak_mib(step: Callable[[], None]) -> float:
    """CPU: the most bytes held by live tensors during one more step (parameters, optimizer
    state, gradients, graphs), from the profiler's memory timeline; the analogue of CUDA's
    ``max_memory_allocated``, without the libraries and allocator slack that RSS includes."""
    import warnings

    with torch.profiler.profile(
        profile_memory=True, record_shapes=True, with_stack=True
    ) as profile:
        step()
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)  # deprecated for CUDA snapshots
        path = Path(folder) / 'timeline.json'
        profile.export_memory_timeline(str(path), device='cpu')
        _, sizes = json.loads(path.read_text())
    return max(sum(row) for row in sizes) / 2**20


def step_flops(step: Callable[[], None]) -> int:
    """FLOPs of one step (matmuls, convolutions, attention; forward and every backward), by
    ``torch.utils.flop_counter``'s per-op formulas. Its ``FlopCounterMode`` cannot be used:
    its module tracker's backward hooks fail inside ``autograd.grad``."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class FlopCount(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            count = flop_registry.get(func._overloadpacket)
            if count is not None:
                FlopCount.total += count(*args, **kwargs, out_val=out)
            return out

    # compiled code runs below the dispatch mode: count its function run eagerly (same ops)
    with FlopCount(), torch.compiler.set_stance('force_eager'):
        step()
    return FlopCount.total


def run_variant(args: argparse.Namespace) -> None:
    """Child process: build, warm up, time; progress and the result go to stdout."""
    if args.threads:
        torch.set_num_threads(args.threads)
    step = build_variant(args.run_variant, args)
    cuda = args.device == 'cuda'
    before = torch.cuda.memory_allocated() if cuda else current_rss_mib()
    times = []
    for index in range(args.warmup + args.steps):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        if index == 0:
            first = time.perf_counter() - start
        if index >= args.warmup:
            times.append(time.perf_counter() - start)
        print('TICK', flush=True)
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 2**20
        allocated = peak
        before /= 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        allocated = allocated_peak_mib(step)
    flops = step_flops(step)
    median = statistics.median(times)
    print(
        'RESULT '
        + json.dumps(
            dict(
                variant=args.run_variant,
                seconds=median,
                min_seconds=min(times),
                first_seconds=first,
                times=times,
                images_per_s=args.batch_size / median,
                peak_mib=peak,
                step_mib=peak - before,
                allocated_mib=allocated,
                flops=flops,
            )
        ),
        flush=True,
    )


def child_command(args: argparse.Namespace, variant: str) -> List[str]:
    command = [
        sys.executable,
        __file__,
        '--run-variant',
        variant,
        '--img-size',
        str(args.img_size),
        '--batch-size',
        str(args.batch_size),
        '--device',
        args.device,
        '--steps',
        str(args.steps),
        '--warmup',
        str(args.warmup),
        '--backbone',
        args.backbone,
        '--arch',
        args.arch,
    ]
    if args.threads:
        command += ['--threads', str(args.threads)]
    return command + ([str(Path(args.config).resolve())] if args.config else [])


def run_child(args: argparse.Namespace, variant: str, env: dict, bar) -> dict:
    """One variant in a fresh process; its result dict (or ``error``)."""
    process = subprocess.Popen(
        child_command(args, variant),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    result = None
    for line in process.stdout:
        if line.startswith('TICK'):
            bar.update(1)
        elif line.startswith('RESULT '):
            result = json.loads(line[len('RESULT ') :])
    stderr = process.stderr.read()
    if process.wait() != 0 or result is None:
        tail = '\n'.join(stderr.strip().splitlines()[-5:])
        bar.write(f'{variant}: failed (exit {process.returncode}):\n{tail}')
        return dict(variant=variant, error=tail)
    return result


def combine_runs(variant: str, runs: List[dict], batch_size: int) -> dict:
    """Median over the repeats: of all timed steps, and of the peaks."""
    failed = [run for run in runs if 'error' in run]
    if failed:
        return failed[0]
    times = [t for run in runs for t in run['times']]
    seconds = statistics.median(times)
    return dict(
        variant=variant,
        seconds=seconds,
        min_seconds=min(times),
        first_seconds=statistics.median(run['first_seconds'] for run in runs),
        times=times,
        images_per_s=batch_size / seconds,
        peak_mib=statistics.median(run['peak_mib'] for run in runs),
        step_mib=statistics.median(run['step_mib'] for run in runs),
        allocated_mib=statistics.median(run['allocated_mib'] for run in runs),
        peaks_mib=[run['peak_mib'] for run in runs],
        flops=runs[0]['flops'],
    )


def measure_all(args: argparse.Namespace) -> List[dict]:
    from tqdm import tqdm

    env = dict(os.environ, PYTHONPATH=f'{REPO}{os.pathsep}{os.environ.get("PYTHONPATH", "")}')
    runs: Dict[str, List[dict]] = {variant: [] for variant in args.variants}
    total = args.repeats * len(args.variants) * (args.warmup + args.steps)
    with tqdm(total=total, unit='step', file=sys.stderr) as bar:
        for repeat in range(args.repeats):
            for variant in args.variants:
                bar.set_description(f'{variant} ({repeat + 1}/{args.repeats})')
                runs[variant].append(run_child(args, variant, env, bar))
    results = [
        combine_runs(variant, variant_runs, args.batch_size)
        for variant, variant_runs in runs.items()
    ]
    for result in results:
        if 'error' not in result and args.peak_tflops:
            result['mfu'] = result['flops'] / result['seconds'] / (args.peak_tflops * 1e12)
    return results


def format_table(results: List[dict], args: argparse.Namespace) -> str:
    reference = next((r for r in results if r['variant'] == REFERENCE and 'error' not in r), None)
    cuda = args.device == 'cuda'
    header = (
        f'{"variant":<22}{"s/step":>9}{"img/s":>8}{"x time":>8}{"min s":>8}{"x min":>7}'
        f'{"1st s":>8}'
        f'{"peak":>9}{"x peak":>8}{"step":>9}{"x step":>8}'
        + ('' if cuda else f'{"alloc":>8}{"x alloc":>8}')
        + f'{"TFLOP":>8}{"MFU":>7}'
    )
    lines = [header, '-' * len(header)]
    for r in results:
        if 'error' in r:
            lines.append(f'{r["variant"]:<22}  failed: {r["error"].splitlines()[-1]}')
            continue
        ratio = (lambda key: f'{r[key] / reference[key]:.2f}') if reference else (lambda key: '-')
        line = (
            f'{r["variant"]:<22}{r["seconds"]:>9.3f}{r["images_per_s"]:>8.2f}'
            f'{ratio("seconds"):>8}{r["min_seconds"]:>8.3f}{ratio("min_seconds"):>7}'
            f'{r["first_seconds"]:>8.1f}'
            f'{r["peak_mib"]:>9.0f}{ratio("peak_mib"):>8}'
            f'{r["step_mib"]:>9.0f}{ratio("step_mib"):>8}'
        )
        if not cuda:
            line += f'{r["allocated_mib"]:>8.0f}{ratio("allocated_mib"):>8}'
        mfu = f'{100 * r["mfu"]:.1f}%' if 'mfu' in r else '-'
        line += f'{r["flops"] / 1e12:>8.3f}{mfu:>7}'
        lines.append(line)
    model = args.config or f'{args.backbone} {args.arch}'
    memory = (
        'MiB allocated' if cuda else 'MiB: peak/step = RSS, alloc = live tensors (profiled step)'
    )
    lines.append(
        f'{model}, {args.img_size} px, batch {args.batch_size}, {args.device}'
        f'{" (bf16 autocast)" if cuda else ""}, median of '
        f'{args.steps} steps after {args.warmup}'
        f'{f" in each of {args.repeats} interleaved runs" if args.repeats > 1 else ""}'
        f'; memory in {memory}; ratios against {REFERENCE}'
    )
    peak = (
        f'MFU = TFLOP/step / median s / {args.peak_tflops:g} TFLOP/s (dense bf16 peak)'
        if args.peak_tflops
        else 'no MFU: give --peak-tflops'
    )
    lines.append(
        'TFLOP/step: matmuls, convolutions and attention of one step (torch.utils.flop_counter: '
        f'forward, inner and outer backward); {peak}'
    )
    return '\n'.join(lines)


def main() -> None:
    args = parse_args()
    if args.run_variant:
        run_variant(args)
        return
    results = measure_all(args)
    print(format_table(results, args))
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k not in ('json', 'run_variant')}
        args.json.write_text(json.dumps(dict(settings=settings, results=results), indent=2))
    failed = [r['variant'] for r in results if 'error' in r]
    if failed:
        raise SystemExit(f'failed variants: {", ".join(failed)} (see the table)')


if __name__ == '__main__':
    main()
