"""Does energy pretraining learn useful features? The paper's protocol in miniature.

    python tools/analysis/study.py [--dataset fashion-mnist|cifar10|cifar10-convnext]
        [--quick | --long] [--phase select|compare|pretrain|evaluate|all]
        [--methods energy mae|spark scratch]
        [--epochs 1 2] [--train-images N] [--full] [--data-root DIR] [--work-dir DIR]
        [--workers 2] [--time-limit MIN] [--no-equal-time] [--seeds 1 2]
        [--sources scratch RUN_ID ...] [--tasks ft-k100 probe ft-full]

Pretrains the study's backbone by energy and by its baseline (the ViT: configs/ebm/*vit-mini*,
MMPretrain's MAE in configs/mae/; ``cifar10-convnext``: a ConvNeXt, configs/ebm/*convnext-
mini*, MMPretrain's SparK in configs/spark/) on the dataset's training images without labels
(Fashion-MNIST: 60,000 grey 28-px images; CIFAR-10: 50,000 colour 32-px photographs), then
for each checkpoint (and for a random initialization, "scratch") fine-tunes all weights on
100 labels per class, probes the frozen features linearly on 1,000 per class and, with
``--full``, fine-tunes on all labelled images not held out; each reports top-1 on the 5,000
held-out training images (validation) and on the 10,000 test images. Every run is the
repository's config run by mmengine's ``Runner``, as ``tools/train.py`` runs it, with the
study's settings applied as config edits (logged in each run's work dir).

Phases:
- ``select``: candidate recipes (energy: corruption, first-step size, N, lr; baseline: lr) at
  the first budget, each fine-tuned on 100 labels per class; the best of each method by
  *validation* top-1 is recorded. Test accuracy is computed too, but never read to choose.
- ``compare``: the chosen recipe of each method at every budget of ``--epochs``, plus the
  baseline for the wall-clock minutes of energy's longest budget (equal time;
  ``--no-equal-time`` skips it), and scratch; every downstream task. Without a selection,
  the configs' own recipes are compared (energy: grid masking on Fashion-MNIST, the paper's
  mix on CIFAR-10). ``--methods`` keeps some of energy, the baseline and scratch (e.g. one
  process each).
- ``pretrain``: compare's pretraining runs only (the baseline first), to evaluate with
  ``compare`` later; a run killed part-way resumes at its last epoch.
- ``evaluate``: every downstream task for scratch and for each pretraining results.json
  holds, pretraining nothing: it can run beside ``pretrain`` in the same work dir (saving
  merges both processes' records); ``--sources`` splits it between processes.

``--seeds`` adds ft-k100 runs with other seeds (each redraws the labelled images, the
held-out split and the run's randomness); the report gives their mean and spread.

Energy checkpoints also get restoration PSNR gains (dB, last step against the corrupted
input) on 256 test images, per corruption; a pretraining with the online k-NN hook (the
CIFAR-10 configs) keeps its k-NN top-1 curve against epochs and training seconds. Results
go to ``<work-dir>/results.json`` after every run (a rerun skips what is there: resumable),
each record with the settings of its resolved config (schedule, labels and held-out images
per class, seed, batch size; a pretraining's batch size is in its run id): a record of the
same key measured with other settings is refused by name, so other settings need another
work dir; the selection counts only scores of its budget. A pretraining's minutes are its
training time summed over the processes that trained it (kept in its checkpoints, so a
resumed run counts every epoch as it ran). Beside results.json: ``results.md`` (tables) and
``results.png`` (top-1 against pretraining epochs and minutes, one line per method; the k-NN
curves in the last row).
Grids: the default (pretraining on the first 12,800 training images for 1 and 2 epochs,
fine-tune 100 epochs, probe 10) fits in 45 minutes on 2 CPU cores for Fashion-MNIST;
``--long`` is the paper's protocol in miniature (all training images, 1, 3 and 10 epochs,
the configs' downstream schedules, ``--full``); ``--quick`` shrinks everything (5,120
images, 1 epoch, short downstream schedules) to check the pipeline; its numbers mean little.
Explicit options override a grid's values.
"""

import argparse
import copy
import fcntl
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import List, Optional

from study_datasets import DATASETS
from study_report import write_report
from study_runs import (  # noqa: F401  (the tests reach them through this module)
    TASKS,
    TRAIN_SECONDS,
    Pretraining,
    Settings,
    candidates,
    downstream_config,
    downstream_settings,
    epochs_done,
    pretraining_config,
    pretraining_settings,
    restoration_gains,
    settings_mismatch,
    train,
    train_seconds,
)

#: Written into a pretraining's work dir when it starts: a resumed run must have them.
RUN_SETTINGS = 'study_settings.json'


class RecordMismatchError(ValueError):
    """The work dir holds a record (or a started run) of the same key with other settings."""


class Study:
    """Runs pretraining and downstream cells, keeping ``results.json`` up to date.

    Every record carries the settings it was measured with (``settings``: read from its
    resolved config) and is reused only for the same settings: a record of the same key
    measured otherwise (another schedule, number of labels, held-out split, batch) is refused
    by name, never returned as this run's.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = settings.work_dir / 'results.json'
        self.results = (
            json.loads(self.path.read_text())
            if self.path.exists()
            else dict(pretraining={}, downstream={}, selection={})
        )
        self._saved = copy.deepcopy(self.results)  # as on disk when loaded or last saved

    def save(self) -> None:
        """Write results.json: what is on disk now (records other processes of this work dir
        saved meanwhile) with the records this process added or changed since it loaded or
        last saved, under a file lock; an older copy of a record another process changed
        (e.g. a newer selection) is not written back."""
        self.settings.work_dir.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix('.lock'), 'w') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            merged = json.loads(self.path.read_text()) if self.path.exists() else {}
            for section, records in self.results.items():
                saved = self._saved.get(section, {})
                ours = {k: v for k, v in records.items() if k not in saved or saved[k] != v}
                merged[section] = {**merged.get(section, {}), **ours}
            self.results, self._saved = merged, copy.deepcopy(merged)
            partial = self.path.with_suffix('.json.partial')
            partial.write_text(json.dumps(self.results, indent=1))
            os.replace(partial, self.path)
            write_report(self.results, self.settings.work_dir, self.settings.data.title)

    def recorded(self, section: str, key: str, wanted: dict) -> Optional[dict]:
        """The record ``key`` of ``section`` if it was measured with ``wanted`` settings;
        ``None`` if there is none.

        Raises:
            RecordMismatchError: a record of that key with other settings.
        """
        record = self.results[section].get(key)
        if record is None:
            return None
        differences = settings_mismatch(record.get('settings'), wanted)
        if differences:
            raise RecordMismatchError(
                f'{self.path} holds {section} record {key!r} measured with other settings '
                f'({"; ".join(differences)}): run these settings in another --work-dir, or '
                'move the record away'
            )
        return record

    def out_of_time(self) -> bool:
        return time.time() > self.settings.deadline

    def pretrain(self, run: Pretraining) -> Optional[dict]:
        cfg = pretraining_config(run, self.settings)
        wanted = pretraining_settings(cfg)
        done = self.recorded('pretraining', run.run_id, wanted)
        if done or self.out_of_time():
            return done
        work_dir = Path(cfg.work_dir)
        done_epochs = epochs_done(work_dir)  # a killed run resumes at its last epoch
        if done_epochs >= run.epochs:  # finished, but its record was never written
            raise RuntimeError(
                f'{cfg.work_dir} holds a finished run (epoch {done_epochs}) that results.json '
                'lacks, so its speed is unknown: move that folder away to train it again'
            )
        started = work_dir / RUN_SETTINGS
        if done_epochs and started.is_file():
            differences = settings_mismatch(json.loads(started.read_text()), wanted)
            if differences:
                raise RecordMismatchError(
                    f'{work_dir} holds a run started with other settings '
                    f'({"; ".join(differences)}): move that folder away to train it again'
                )
        work_dir.mkdir(parents=True, exist_ok=True)
        started.write_text(json.dumps(wanted, indent=1))
        resumed = f' (resuming after epoch {done_epochs})' if done_epochs else ''
        print(f'[study] pretraining {run.run_id}{resumed}', flush=True)
        cfg.resume = True
        runner, seconds = train(cfg)
        checkpoint = work_dir / f'epoch_{run.epochs}.pth'
        images_per_epoch = len(runner.train_dataloader) * cfg.train_dataloader.batch_size
        # training seconds summed over every process that trained the run (kept in the
        # checkpoints); a run resumed from a checkpoint without them: this process's epochs
        # extrapolated to all, and the record says so
        measured = train_seconds(str(checkpoint))
        summed = seconds * run.epochs / (run.epochs - done_epochs) if measured is None else measured
        record = dict(
            asdict(run),
            recipe=run.recipe,
            checkpoint=str(checkpoint),
            minutes=summed / 60,
            images_per_s=run.epochs * images_per_epoch / summed,
            resumed_after_epoch=done_epochs,
            device=str(next(runner.model.parameters()).device),
            settings=wanted,
        )
        if measured is None:
            record['minutes_extrapolated'] = True
        if run.method == 'energy':
            model = runner.model.module if hasattr(runner.model, 'module') else runner.model
            record['alpha'] = float(model.alpha.detach())  # at the end; and as first set:
            step_size = [h for h in runner.hooks if type(h).__name__ == 'InitialStepSizeHook']
            if step_size and step_size[0].record:
                record['alpha_initial'] = step_size[0].record['alpha']
            record['restoration'] = restoration_gains(model, cfg)
        knn = work_dir / 'knn_history.json'  # the online k-NN hook's curve, if the config has it
        if knn.is_file():
            record['knn'] = json.loads(knn.read_text())
        self.results['pretraining'][run.run_id] = record
        self.save()
        return record

    def downstream(self, source: str, checkpoint: Optional[str], task: str) -> Optional[dict]:
        key = f'{source}/{task}'
        work_dir = self.settings.work_dir / source / task
        cfg = downstream_config(task, checkpoint, self.settings, work_dir)
        wanted = downstream_settings(cfg)
        done = self.recorded('downstream', key, wanted)
        if done or self.out_of_time():
            return done
        print(f'[study] {task} from {source}', flush=True)
        runner, seconds = train(cfg)
        val = float(runner.message_hub.get_scalar('val/accuracy/top1').current())
        test = float(runner.test()['accuracy/top1'])
        record = dict(
            source=source,
            task=task,
            val_top1=val,
            test_top1=test,
            minutes=seconds / 60,
            settings=wanted,
        )
        self.results['downstream'][key] = record
        self.save()
        return record

    def evaluate(self, run: Optional[Pretraining], tasks: List[str]) -> None:
        if run is None:
            for task in tasks:
                self.downstream('scratch', None, task)
            return
        record = self.pretrain(run)
        if record is not None:
            for task in tasks:
                self.downstream(run.run_id, record['checkpoint'], task)

    def evaluate_recorded(self, tasks: List[str], sources: Optional[List[str]] = None) -> None:
        """``tasks`` for scratch and every pretraining results.json holds now (or only
        ``sources`` of them, in their order); pretrains nothing, so it can run while another
        process trains into the same work dir, or beside another 'evaluate' of other
        sources."""
        recorded = {'scratch': None, **self.results['pretraining']}
        unknown = [source for source in sources or () if source not in recorded]
        if unknown:
            raise ValueError(
                f'--sources {" ".join(unknown)}: not in {self.path}; recorded are '
                f'{", ".join(recorded)}'
            )
        for source in recorded if sources is None else sources:
            record = recorded[source]
            for task in tasks:
                self.downstream(source, record and record['checkpoint'], task)

    def select(self, epochs, train_images, methods=None, imported=()) -> None:
        """Run the candidates of ``methods``, then choose each method's best by validation
        top-1 among the candidates measured here or in ``imported`` results files (another
        machine's select phase: their scores, not their checkpoints, are used). Only scores
        of this budget count: the candidate's run (epochs, images, batch: its run id) and
        pretraining settings, and the select fine-tune's settings; others are ignored, with
        a note."""
        methods = self.settings.data.methods if methods is None else methods
        runs = [
            self.settings.sized(run) for run in candidates(epochs, train_images, self.settings.data)
        ]
        for run in runs:
            if run.method in methods:
                self.evaluate(run, ['select'])
        select_cfg = downstream_config('select', None, self.settings, self.settings.work_dir)
        wanted = downstream_settings(select_cfg)
        pretrained = {
            run.run_id: pretraining_settings(pretraining_config(run, self.settings)) for run in runs
        }
        scores, ignored = {}, []  # run id -> (validation top-1, where measured)
        for origin, results in [(str(p), json.loads(Path(p).read_text())) for p in imported] + [
            ('here', self.results)
        ]:
            for key, record in results['downstream'].items():
                source, task = key.rsplit('/', 1)
                if task != 'select' or source not in results['pretraining']:
                    continue
                pre = results['pretraining'][source]
                if (
                    source not in pretrained
                    or settings_mismatch(pre.get('settings'), pretrained[source])
                    or settings_mismatch(record.get('settings'), wanted)
                ):
                    ignored.append(f'{key} ({origin})')
                    continue
                scores[source] = (record['val_top1'], origin)
        if ignored:
            print(
                f'[study] selection ignores {len(ignored)} scores of other budgets or settings: '
                + ', '.join(ignored),
                flush=True,
            )
        for method in self.settings.data.methods:
            scored = [
                (scores[run.run_id], run)
                for run in runs
                if run.method == method and run.run_id in scores
            ]
            if scored:
                (val, where), best = max(scored, key=lambda pair: pair[0][0])
                self.results['selection'][method] = asdict(best)
                self.results.setdefault('selection_scores', {})[method] = [
                    dict(run_id=run.run_id, recipe=run.recipe, val_top1=score, measured=origin)
                    for (score, origin), run in scored
                ]
                # what the scores were measured with: the budget is in the run ids
                self.results.setdefault('selection_settings', {})[method] = wanted
        self.save()

    def chosen(self, method: str, epochs: int, train_images: Optional[int]) -> Pretraining:
        """The selected recipe of ``method`` (the config's without a selection) at this
        budget and batch size."""
        chosen = self.results['selection'].get(method)
        if chosen is None:
            run = Pretraining(method, epochs, corruption=self.settings.data.default_corruption)
        else:
            run = Pretraining(**chosen)
        return self.settings.sized(replace(run, epochs=epochs, train_images=train_images))

    def compare(
        self,
        budgets: List[int],
        tasks: List[str],
        train_images,
        full: bool,
        equal_time=True,
        methods=None,
    ) -> None:
        """``tasks`` at every budget; with ``full``, also 'ft-full' at the longest; with
        ``equal_time``, MAE once more for the minutes energy's longest budget took (once
        both are recorded). Only the runs of ``methods``."""
        energy_method, baseline = self.settings.data.methods
        methods = (energy_method, baseline, 'scratch') if methods is None else methods
        longest = tasks + ['ft-full'] * full
        if 'scratch' in methods:
            self.evaluate(None, longest)
        for epochs in sorted(budgets, reverse=True):  # the long point first
            for method in (baseline, 'energy'):  # the cheaper first: it lands if time runs out
                if method not in methods:
                    continue
                run = self.chosen(method, epochs, train_images)
                self.evaluate(run, longest if epochs == max(budgets) else tasks)
        # the baseline (MAE, SparK) for as long as energy's longest budget took (equal time)
        energy = self.results['pretraining'].get(
            self.chosen('energy', max(budgets), train_images).run_id
        )
        base = self.results['pretraining'].get(
            self.chosen(baseline, max(budgets), train_images).run_id
        )
        if energy and base and equal_time and baseline in methods:
            epochs = max(1, round(energy['minutes'] / (base['minutes'] / base['epochs'])))
            self.evaluate(self.chosen(baseline, epochs, train_images), longest)


# --------------------------------------------------------------------------- command line
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--phase',
        choices=('select', 'compare', 'pretrain', 'evaluate', 'all'),
        default='compare',
    )
    parser.add_argument(
        '--dataset', choices=tuple(DATASETS), default='fashion-mnist', help='the study to run'
    )
    parser.add_argument(
        '--methods',
        nargs='+',
        choices=('energy', 'mae', 'spark', 'scratch'),
        default=None,
        help="compare/pretrain: only these (default: energy, the dataset's baseline, scratch)",
    )
    parser.add_argument('--epochs', type=int, nargs='+', default=None, help='budgets')
    parser.add_argument('--full', action='store_true', help='also fine-tune on all labels')
    grid = parser.add_mutually_exclusive_group()
    grid.add_argument('--quick', action='store_true', help='a 10-minute check')
    grid.add_argument('--long', action='store_true', help='all images, 1 3 10 epochs, --full')
    parser.add_argument('--data-root', default=None, help="default: the dataset's data/<name>")
    parser.add_argument('--work-dir', default=None, help='default: work_dirs/<dataset>_study')
    parser.add_argument('--workers', type=int, default=2, help='dataloader workers')
    parser.add_argument(
        '--train-images', type=int, default=None, help='pretraining subset (0: all)'
    )
    parser.add_argument(
        '--select-methods', nargs='+', choices=('energy', 'mae', 'spark'), default=None
    )
    parser.add_argument(
        '--selection-from', nargs='*', default=[], help="other runs' results.json to choose from"
    )
    parser.add_argument(
        '--batch-size', type=int, default=None, help='pretraining batch (default 256; lr scales)'
    )
    parser.add_argument('--ft-epochs', type=int, default=None, help='ft-k100 (default 100)')
    parser.add_argument('--probe-epochs', type=int, default=None, help='probe (default 30)')
    parser.add_argument(
        '--seeds', type=int, nargs='+', default=[], help='ft-k100 again with these seeds'
    )
    parser.add_argument(
        '--sources',
        nargs='+',
        default=None,
        help="evaluate: only these ('scratch', run ids), in this order",
    )
    parser.add_argument(
        '--tasks',
        nargs='+',
        choices=TASKS,
        default=None,
        help="compare/evaluate: only these downstream tasks (default: the grid's; seeds are "
        "ft-k100's)",
    )
    parser.add_argument('--holdout-per-class', type=int, default=None, help='default 500')
    parser.add_argument('--labels-per-class', type=int, default=None, help='ft-k100: 100')
    parser.add_argument('--probe-per-class', type=int, default=None, help='probe: 1000')
    parser.add_argument(
        '--time-limit', type=float, default=None, help='minutes; no new run starts after'
    )
    parser.add_argument(
        '--no-equal-time',
        dest='equal_time',
        action='store_false',
        help="skip compare's baseline (MAE, SparK) run for energy's minutes",
    )
    args = parser.parse_args(argv)
    data = DATASETS[args.dataset]
    for name in ('methods', 'select_methods'):
        allowed = (*data.methods, 'scratch') if name == 'methods' else data.methods
        chosen = getattr(args, name) or list(allowed)
        wrong = [method for method in chosen if method not in allowed]
        if wrong:
            parser.error(
                f'--{name.replace("_", "-")} {" ".join(wrong)}: not a method of --dataset '
                f'{data.name}, whose are {", ".join(allowed)}'
            )
        setattr(args, name, chosen)
    args.data_root = args.data_root or data.data_root
    args.work_dir = args.work_dir or f'work_dirs/{data.name.replace("-", "_")}_study'
    if args.epochs and min(args.epochs) < 1:
        parser.error(f'--epochs must be >= 1, got {args.epochs}')
    for name in (
        'holdout_per_class',
        'labels_per_class',
        'probe_per_class',
        'batch_size',
        'ft_epochs',
        'probe_epochs',
    ):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {value}')
    batch = args.batch_size or 256
    if args.train_images and args.train_images < batch:
        parser.error(f'--train-images must be >= the batch {batch}, got {args.train_images}')
    if any(seed < 0 for seed in args.seeds):
        parser.error(f'--seeds must be >= 0, got {args.seeds}')
    if args.sources and args.phase != 'evaluate':
        parser.error(f'--sources is for --phase evaluate, not --phase {args.phase}')
    if args.workers < 0:
        parser.error(f'--workers must be >= 0, got {args.workers}')
    if args.time_limit is not None and args.time_limit <= 0:
        parser.error(f'--time-limit must be > 0 minutes, got {args.time_limit}')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    data = DATASETS[args.dataset]
    root = Path(args.data_root)
    missing = [name for name in data.required if not (root / name).exists()]
    if missing:
        print(
            f'error: {root} lacks {", ".join(missing)} ({data.title}); prepare it with '
            f'{data.prepare}',
            file=sys.stderr,
        )
        return 2
    settings = Settings(
        data_root=str(root.resolve()),
        work_dir=Path(args.work_dir).resolve(),
        workers=args.workers,
        data=data,
    )
    settings.holdout_per_class = args.holdout_per_class
    settings.batch_size = args.batch_size
    if args.labels_per_class:
        settings.labels_per_class.update({'select': args.labels_per_class})
        settings.labels_per_class.update({'ft-k100': args.labels_per_class})
    if args.probe_per_class:
        settings.labels_per_class['probe'] = args.probe_per_class
    if args.quick:  # a check of the pipeline
        train_images, epochs = 5120, [1]
        settings.ft_epochs = {'select': 10, 'ft-k100': 20, 'probe': 5, 'ft-full': 1}
    elif args.long:  # the configs' own schedules (the default is 'select': 30)
        train_images, epochs, args.full = None, [1, 3, 10], True
    else:  # about an hour on 2 CPU cores
        train_images, epochs = 12800, [1, 2]
        settings.ft_epochs.update({'probe': 10})  # ft-k100: the config's 100 epochs
    if args.train_images is not None:
        train_images = args.train_images or None
    epochs = args.epochs or epochs
    if args.ft_epochs:
        settings.ft_epochs['ft-k100'] = args.ft_epochs
    if args.probe_epochs:
        settings.ft_epochs['probe'] = args.probe_epochs
    if args.time_limit:
        settings.deadline = time.time() + 60 * args.time_limit
    study = Study(settings)
    # seed 0 is the configs' own draw of the labelled subset
    tasks = ['ft-k100', 'probe'] + [f'ft-k100-seed{s}' for s in sorted(set(args.seeds) - {0})]
    if args.tasks is not None:  # e.g. the 1,000-label fine-tunes first, ft-full later
        args.full = 'ft-full' in args.tasks
        tasks = [t for t in tasks if t.split('-seed')[0] in args.tasks]
    try:
        if args.phase in ('select', 'all'):
            study.select(min(epochs), train_images, args.select_methods, args.selection_from)
        if args.phase in ('compare', 'all'):
            study.compare(epochs, tasks, train_images, args.full, args.equal_time, args.methods)
        if args.phase == 'pretrain':  # compare's pretraining only (downstream in a later run)
            methods = [m for m in args.methods if m != 'scratch']  # nothing to pretrain
            study.compare(epochs, [], train_images, False, args.equal_time, methods)
        if args.phase == 'evaluate':  # downstream of what is pretrained (e.g. beside 'pretrain')
            study.evaluate_recorded(tasks + ['ft-full'] * args.full, args.sources)
    except ValueError as error:  # RecordMismatchError, an unknown --sources
        print(f'error: {error}', file=sys.stderr)
        return 2
    study.save()
    print((settings.work_dir / 'results.md').read_text())
    return 0


if __name__ == '__main__':
    sys.exit(main())
