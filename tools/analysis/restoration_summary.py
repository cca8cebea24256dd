"""Print what a pretraining run restored: per corruption, the mean PSNR of the corrupted input
and of the last step at the last drawing, the gain between them, one line naming the
corruptions that gained less than ``--min-gain`` dB (not visibly restored), and the run's
figures.

    python tools/analysis/restoration_summary.py WORK_DIR [--name restoration_held_out]
        [--min-gain 1.0]

``make demo`` ends with it. It reads the scalars ``<name>/<corruption>/psnr_{corrupted,step<n>}``
that ``RestorationVisualizationHook`` writes through mmengine's ``LocalVisBackend``
(``WORK_DIR/<timestamp>/vis_data/scalars.json``, of the newest run that has them); the gain is
psnr_step<N> - psnr_corrupted in dB, N the last step. Standard library only: it runs in a
fraction of a second.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Tuple

SCALARS = '*/vis_data/scalars.json'
CORRUPTED = 'corrupted'
STEP = 'step'


class SummaryError(ValueError):
    """The work directory holds no restoration PSNR of the requested name."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dir', type=Path, help='work directory of a pretraining run')
    parser.add_argument(
        '--name',
        default='restoration_held_out',
        help="the RestorationVisualizationHook's name (default: the demo's held-out images)",
    )
    parser.add_argument(
        '--min-gain',
        type=float,
        default=1.0,
        help='gain in dB below which a corruption is named as not visibly restored (default 1)',
    )
    return parser.parse_args()


def psnr_of_row(row: dict, name: str) -> Dict[str, Dict[str, float]]:
    """``{corruption: {'corrupted': dB, 'step1': dB, ...}}`` of one scalars.json row."""
    prefix = f'{name}/'
    table: Dict[str, Dict[str, float]] = {}
    for key, value in row.items():
        if key.startswith(prefix) and '/psnr_' in key:
            corruption, what = key[len(prefix) :].rsplit('/psnr_', 1)
            table.setdefault(corruption, {})[what] = float(value)
    return table


def last_psnr(work_dir: Path, name: str) -> Tuple[Path, int, Dict[str, Dict[str, float]]]:
    """The newest run's last drawing of ``name``: (scalars file, iteration, PSNR table).

    Raises:
        SummaryError: if no run in ``work_dir`` logged PSNR under ``name``; it names the hook
            names that were logged.
    """
    files = sorted(work_dir.glob(SCALARS), key=lambda path: path.parts[-3], reverse=True)
    if not files:
        raise SummaryError(
            f"no {SCALARS} in {work_dir}: not the work directory of a run with mmengine's "
            'LocalVisBackend'
        )
    names = set()
    for path in files:  # newest first: timestamp folders sort by time
        last = None
        for line in filter(str.strip, path.read_text().splitlines()):
            row = json.loads(line)
            names.update(key.split('/', 1)[0] for key in row if '/psnr_' in key)
            table = psnr_of_row(row, name)
            if table:
                last = (path, int(row['step']), table)
        if last is not None:
            return last
    found = ', '.join(sorted(names)) or 'none'
    raise SummaryError(
        f'no run in {work_dir} logged restoration PSNR named {name!r}; names logged: {found}'
    )


def summary_lines(work_dir: Path, name: str, min_gain: float = 1.0) -> List[str]:
    """The lines that :func:`main` prints."""
    _, iteration, table = last_psnr(work_dir, name)
    steps = {
        int(what[len(STEP) :]) for psnr in table.values() for what in psnr if what != CORRUPTED
    }
    last = f'{STEP}{max(steps)}'
    width = max(len(corruption) for corruption in table)
    lines = [
        f'{name} at iteration {iteration}: gain of step {max(steps)} over the corrupted input '
        '(mean PSNR in dB)'
    ]
    below = []
    for corruption, psnr in table.items():
        gain = psnr[last] - psnr[CORRUPTED]
        lines.append(
            f'  {corruption:<{width}}  {gain:+.2f} dB  ({psnr[CORRUPTED]:.2f} -> {psnr[last]:.2f})'
        )
        if round(gain, 2) < min_gain:
            below.append(corruption)
    if below:
        lines.append(f'not visibly restored (gain below {min_gain:+.2f} dB): ' + ', '.join(below))
    figures = sorted(work_dir.glob('*.png'))
    lines.append('figures: ' + (', '.join(str(path) for path in figures) or 'none'))
    checkpoint = work_dir / 'last_checkpoint'  # written by mmengine's CheckpointHook
    if checkpoint.is_file():
        path = Path(checkpoint.read_text().strip())
        if path.is_relative_to(work_dir.resolve()):  # shown as the figures are
            path = work_dir / path.relative_to(work_dir.resolve())
        lines.append(f'checkpoint: {path}')
    return lines


def main() -> None:
    args = parse_args()
    try:
        lines = summary_lines(args.work_dir, args.name, args.min_gain)
    except SummaryError as error:
        sys.exit(f'restoration_summary.py: error: {error}')
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
