"""Where a training step's time goes: the top operators and kernels of one variant.

    python tools/analysis/profile_step.py VARIANT [CONFIG] [--arch deit-small]
        [--img-size 224] [--batch-size 8] [--device cpu|cuda] [--warmup 2] [--steps 3]
        [--top 25] [--out table.txt]

Builds the variant as ``benchmark_step.py`` does (:mod:`step_variants`, the same step
function), runs ``--warmup`` steps (the first compiles ``grad_mode='compiled'``), then
profiles ``--steps`` steps with ``torch.profiler`` and prints the ``--top`` rows by self
time: CUDA kernels by self device time on a GPU (under bf16 autocast, as the benchmark),
operators by self CPU time on the CPU. Inductor's fused kernels appear as ``triton_*`` (GPU)
or ``Call CompiledFxGraph`` (CPU); eager autograd's double backward as its ATen composites.
"""

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_variants import BACKBONES, VARIANTS, build_variant  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('variant', choices=VARIANTS, metavar='VARIANT', help=', '.join(VARIANTS))
    parser.add_argument('config', nargs='?', help='pretraining config (default: --arch)')
    parser.add_argument('--backbone', choices=tuple(BACKBONES), default='vit')
    parser.add_argument('--arch', default='deit-small')
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--steps', type=int, default=3)
    parser.add_argument('--top', type=int, default=25)
    parser.add_argument('--out', type=Path, help='also write the table to this file')
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.steps < 1 or args.top < 1:
        parser.error('--warmup, --steps and --top must be >= 1')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    if args.config and not Path(args.config).is_file():
        parser.error(f'no such config: {args.config}')
    return args


def profile(args: argparse.Namespace) -> str:
    """The profiler's table of the timed steps, headed by the step time."""
    step = build_variant(args.variant, args)
    cuda = args.device == 'cuda'
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    start = time.perf_counter()
    for _ in range(args.warmup):
        step()
    sync()
    warmup = time.perf_counter() - start
    activities = [torch.profiler.ProfilerActivity.CPU]
    if cuda:
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(args.steps):
            step()
        sync()
    sort = 'self_device_time_total' if cuda else 'self_cpu_time_total'
    events = prof.key_averages()
    total = sum(getattr(e, sort) for e in events)
    table = events.table(sort_by=sort, row_limit=args.top, max_name_column_width=70)
    model = args.config or f'{args.backbone} {args.arch}'
    head = (
        f'{args.variant}: {model}, {args.img_size} px, batch {args.batch_size}, {args.device}; '
        f'{args.warmup} warm-up step(s) in {warmup:.1f} s, then {args.steps} profiled; '
        f'rows by {sort} (total {total / 1e3 / args.steps:.1f} ms per step)'
    )
    return f'{head}\n{table}'


def main() -> None:
    args = parse_args()
    text = profile(args)
    print(text)
    if args.out:
        args.out.write_text(text + '\n')


if __name__ == '__main__':
    main()
