"""The study's report: ``results.md`` and ``results.png`` from ``results.json``."""

import json
from pathlib import Path
from typing import List, Optional

import numpy as np
from study_runs import TASKS, Pretraining, split_task


def write_report(results: dict, folder: Path, title: str = 'Fashion-MNIST') -> None:
    """results.md (selection and comparison tables) and results.png."""
    down = results['downstream']
    tasks = [t for t in ('select', *TASKS) if any(k.endswith('/' + t) for k in down)]

    def cell(source: str, task: str, split: str = 'test_top1') -> str:
        record = down.get(f'{source}/{task}')
        return f'{record[split]:.2f}' if record else ''

    columns = ['pretraining', 'epochs', 'minutes', 'images/s']
    columns += [f'{t} {split}' for t in tasks for split in ('val', 'test')]
    columns += ['k-NN top-1: start -> end', 'restoration gain (dB)', 'alpha: first batch -> end']
    lines = [f'# {title} study', '']
    lines += [
        'Top-1 (%) on the 5,000 held-out training images (val) and the 10,000 test images (test);'
        ' online k-NN top-1 (%) on 1,000 of the held-out images.',
        '',
        '| ' + ' | '.join(columns) + ' |',
        '|' + '---|' * len(columns),
    ]
    rows = [('scratch', None)] + sorted(
        results['pretraining'].items(), key=lambda kv: (kv[1]['method'], kv[1]['epochs'])
    )
    for source, record in rows:
        name = record['recipe'] if record else 'none (scratch)'
        if record and record.get('train_images'):
            name += f' ({record["train_images"]} images)'
        epochs = f'{record["epochs"]}' if record else '0'
        minutes = f'{record["minutes"]:.1f}' if record else ''
        if record and record.get('minutes_extrapolated'):
            minutes += ' (extrapolated)'  # resumed from a checkpoint without its time
        rate = f'{record["images_per_s"]:.0f}' if record else ''
        scores = [cell(source, t, split) for t in tasks for split in ('val_top1', 'test_top1')]
        knn = (record or {}).get('knn') or []
        curve = f'{knn[0]["knn_top1"]:.1f} -> {knn[-1]["knn_top1"]:.1f}' if knn else ''
        gains = ', '.join(
            f'{name} {value["gain"]:+.2f}'
            for name, value in ((record or {}).get('restoration') or {}).items()
        )
        alpha = alpha_change(record or {})
        cells = [name, epochs, minutes, rate, *scores, curve, gains, alpha]
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines += seed_spread(down)
    if results['selection']:
        lines += ['', 'Chosen by validation top-1 of "select" (ft-k100, shorter):', '']
        for method, run in results['selection'].items():
            lines.append(f'- {method}: {Pretraining(**run).recipe}')
    training = curves_in_training(results, folder)
    if training:
        lines += ['', 'Still training (online k-NN top-1 so far, from knn_history.json):', '']
        for run_id, history in training.items():
            lines.append(
                f'- {run_id}: epoch {history[-1]["epoch"]}, '
                f'{history[-1]["train_s"] / 60:.1f} min, '
                + ' -> '.join(f'{h["knn_top1"]:.1f}' for h in history)
            )
    (folder / 'results.md').write_text('\n'.join(lines) + '\n')
    plot(results, folder / 'results.png', [t for t in tasks if t != 'select'], training)


def curves_in_training(results: dict, folder: Path) -> dict:
    """{run id: k-NN history} of the pretrainings in ``folder`` that have a curve but no
    record yet (training, or stopped part-way: a rerun resumes them)."""
    curves = {}
    for path in sorted(Path(folder).glob('*/knn_history.json')):
        run_id = path.parent.name
        if run_id not in results['pretraining']:
            history = json.loads(path.read_text())
            if history:
                curves[run_id] = history
    return curves


def alpha_change(record: dict) -> str:
    """'first -> end' of an energy run's alpha ('?' where the first is not recorded)."""
    if 'alpha' not in record:
        return ''
    first = record.get('alpha_initial')
    return f'{"?" if first is None else f"{first:.3g}"} -> {record["alpha"]:.3g}'


def seed_spread(down: dict) -> List[str]:
    """Mean and sample standard deviation over a task's seeds (the unseeded run is seed 0),
    per source; only for tasks run with more than one seed."""
    runs = {}  # (source, task) -> records, one per seed
    for key, record in down.items():
        source, task = key.rsplit('/', 1)
        runs.setdefault((source, split_task(task)[0]), []).append(record)
    rows = []
    for (source, task), records in sorted(runs.items()):
        if len(records) > 1:
            spread = [
                f'{np.mean(v):.2f} ± {np.std(v, ddof=1):.2f}'
                for v in ([r[s] for r in records] for s in ('val_top1', 'test_top1'))
            ]
            rows.append(f'| {source} | {task} | {len(records)} | {spread[0]} | {spread[1]} |')
    if not rows:
        return []
    return [
        '',
        'Over seeds (labelled subset, held-out split and run redrawn): mean ± standard deviation.',
        '',
        '| source | task | seeds | val top-1 | test top-1 |',
        '|---|---|---|---|---|',
        *rows,
    ]


def plot(results: dict, path: Path, tasks: List[str], training: Optional[dict] = None) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    curves = {rid: r['knn'] for rid, r in results['pretraining'].items() if r.get('knn')}
    curves.update({f'{rid} (training)': history for rid, history in (training or {}).items()})
    if not tasks and not curves:
        return
    rows = len(tasks) + bool(curves)
    figure, axes = plt.subplots(rows, 2, figsize=(9, 3.2 * rows), squeeze=False)
    chosen = {m: Pretraining(**r).recipe for m, r in results['selection'].items()}
    down = results['downstream']
    methods = sorted({r['method'] for r in results['pretraining'].values()})  # energy, mae/spark
    for row, task in enumerate(tasks):
        scratch = down.get(f'scratch/{task}')
        for col, x_key in enumerate(('epochs', 'minutes')):
            ax = axes[row][col]
            for method in methods:
                recipe = chosen.get(method)
                runs = sorted(
                    (record[x_key], rid)
                    for rid, record in results['pretraining'].items()
                    if record['method'] == method
                    and (recipe is None or record['recipe'] == recipe)
                    and f'{rid}/{task}' in down
                )
                if runs:
                    xs = [x for x, _ in runs]
                    ys = [down[f'{rid}/{task}']['test_top1'] for _, rid in runs]
                    (line,) = ax.plot(xs, ys, marker='o', label=recipe or method)
                    for x, rid in runs:
                        errorbar(ax, down, rid, task, x, line.get_color())
            if scratch:
                ax.axhline(scratch['test_top1'], color='grey', linestyle='--', label='scratch')
                values = seed_values(down, 'scratch', task)
                if len(values) > 1:
                    mean, sd = np.mean(values), np.std(values, ddof=1)
                    ax.axhspan(mean - sd, mean + sd, color='grey', alpha=0.15)
            ax.set_xlabel(f'pretraining {x_key}')
            ax.set_ylabel(f'{task} test top-1 (%)')
            ax.grid(alpha=0.3)
        axes[row][0].legend(fontsize=7)
    if curves:
        knn_curves(axes[-1], curves)
    figure.suptitle(
        'lines: seed 0; open squares, grey band: mean ± sd over seeds where run', fontsize=8
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def knn_curves(axes, curves: dict) -> None:
    """The online k-NN top-1 of each pretraining against its epochs and training minutes
    (``knn_history.json`` of the KNNEvaluationHook: epoch 0 is the initialization)."""
    for run_id, history in sorted(curves.items()):
        epochs = [h['epoch'] for h in history]
        minutes = [h['train_s'] / 60 for h in history]
        top1 = [h['knn_top1'] for h in history]
        axes[0].plot(epochs, top1, marker='.', label=run_id)
        axes[1].plot(minutes, top1, marker='.', label=run_id)
    for ax, x_key in zip(axes, ('epochs', 'minutes')):
        ax.set_xlabel(f'pretraining {x_key}')
        ax.set_ylabel('online k-NN top-1 (%, validation)')
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)


def seed_values(down: dict, source: str, task: str) -> List[float]:
    """Test top-1 of ``source``'s runs of ``task`` over its seeds (the unseeded run and every
    '<task>-seed<N>')."""
    return [
        record['test_top1']
        for key, record in sorted(down.items())
        if key.rsplit('/', 1)[0] == source and split_task(key.rsplit('/', 1)[1])[0] == task
    ]


def errorbar(ax, down: dict, source: str, task: str, x: float, color) -> None:
    """Mean ± sample sd over seeds at ``x``, where ``task`` ran with more than one seed."""
    values = seed_values(down, source, task)
    if len(values) > 1:
        ax.errorbar(
            x, np.mean(values), yerr=np.std(values, ddof=1), fmt='s', mfc='none',
            color=color, capsize=3,
        )  # fmt: skip
