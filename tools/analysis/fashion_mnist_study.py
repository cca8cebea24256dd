"""Does energy pretraining learn useful features? The paper's protocol in miniature.

    python tools/analysis/fashion_mnist_study.py [--quick | --long] [--phase select|compare|all]
        [--epochs 1 2] [--train-images N] [--full] [--data-root data/fashion_mnist]
        [--work-dir work_dirs/fashion_mnist_study] [--workers 2] [--time-limit MIN]

Pretrains the study's ViT (configs/ebm/*_fashion-mnist.py, configs/mae/*_fashion-mnist.py)
on the 60,000 Fashion-MNIST training images without labels, then for each checkpoint (and
for a random initialization, "scratch") fine-tunes all weights on 100 labels per class,
probes the frozen features linearly on 1,000 per class and, with ``--full``, fine-tunes on
all 55,000 labelled images not held out; each reports top-1 on the 5,000 held-out training
images (validation) and on the 10,000 test images. Every run is the repository's config run
by mmengine's ``Runner``, as ``tools/train.py`` runs it, with the study's settings applied
as config edits (logged in each run's work dir).

Phases:
- ``select``: candidate recipes (energy: corruption, first-step size, N, lr; MAE: lr) at
  the first budget, each fine-tuned on 100 labels per class; the best of each method by
  *validation* top-1 is recorded. Test accuracy is computed too, but never read to choose.
- ``compare``: the chosen recipe of each method at every budget of ``--epochs``, plus MAE
  for the wall-clock minutes of energy's longest budget (equal time), and scratch; every
  downstream task. Without a selection, the configs' own recipes are compared.

Energy checkpoints also get restoration PSNR gains (dB, last step against the corrupted
input) on 256 test images, per corruption. Results go to ``<work-dir>/results.json`` after
every run (a rerun skips what is there: resumable), with ``results.md`` (tables) and
``results.png`` (top-1 against pretraining epochs and minutes, one line per method).
Grids: the default fits about an hour on 2 CPU cores (pretraining on the first 12,800
training images for 1 and 2 epochs, fine-tune 50 epochs, probe 10); ``--long`` is the paper's
protocol in miniature for a GPU (all 60,000 images, 1, 3 and 10 epochs, the configs'
downstream schedules, ``--full``); ``--quick`` shrinks everything (5,120 images, 1 epoch,
short downstream schedules) to check the pipeline in about 10 minutes; its numbers mean
little. Explicit options override a grid's values.
"""

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]
ENERGY_CONFIG = 'configs/ebm/ebm_vit-mini-p4_1xb256-{}-coslr-10e_fashion-mnist.py'
MAE_CONFIG = 'configs/mae/mae_vit-mini-p4_1xb256-coslr-10e_fashion-mnist.py'
DOWNSTREAM = {
    'ft-k100': 'configs/benchmarks/mmpretrain/vit-mini-p4_1xb128-coslr-100e_fashion-mnist-k100.py',
    'probe': 'configs/benchmarks/mmpretrain/'
    'vit-mini-p4_1xb256-linear-coslr-30e_fashion-mnist-k1000.py',
    'ft-full': 'configs/benchmarks/mmpretrain/vit-mini-p4_1xb256-coslr-10e_fashion-mnist-full.py',
}
CORRUPTIONS = ('gridmask', 'randmask-large', 'sr4', 'denoise', 'mixed')
PSNR_IMAGES = 256


@dataclass(frozen=True)
class Pretraining:
    """One pretraining run: a method, its recipe and its length."""

    method: str  # 'energy' or 'mae'
    epochs: int
    corruption: str = 'gridmask'  # energy only
    lr: Optional[float] = None  # None: the config's
    target_rms: Optional[float] = None  # energy: first-step RMS (InitialStepSizeHook)
    num_steps: Optional[int] = None  # energy: N
    train_images: Optional[int] = None  # None: all 60,000

    @property
    def recipe(self) -> str:
        parts = [self.method] + ([self.corruption] if self.method == 'energy' else [])
        for key in ('lr', 'target_rms', 'num_steps'):
            value = getattr(self, key)
            if value is not None:
                parts.append(f'{key}={value:g}')
        return ' '.join(parts)

    @property
    def run_id(self) -> str:
        subset = f'_n{self.train_images}' if self.train_images else ''
        return f'{self.recipe.replace(" ", "_")}_e{self.epochs}{subset}'

    @property
    def config(self) -> str:
        return ENERGY_CONFIG.format(self.corruption) if self.method == 'energy' else MAE_CONFIG


def candidates(epochs: int, train_images: Optional[int]) -> List[Pretraining]:
    """The recipes the select phase compares (README: what was tried)."""
    energy = [
        dict(),  # grid masking 50 %, first step RMS 0.03, N = 2, lr 1e-3
        dict(target_rms=0.1),
        dict(target_rms=0.3),
        dict(num_steps=1),
        dict(lr=3e-3),
        dict(corruption='randmask-large'),
        dict(corruption='mixed'),
    ]
    mae = [dict(), dict(lr=1e-3)]  # MAE's base lr 1.5e-4 and ours
    return [Pretraining('energy', epochs, train_images=train_images, **kw) for kw in energy] + [
        Pretraining('mae', epochs, train_images=train_images, **kw) for kw in mae
    ]


@dataclass
class Settings:
    data_root: str
    work_dir: Path
    workers: int
    # downstream lengths: the select phase's short fine-tune, and overrides of the configs'
    ft_epochs: Dict[str, int] = field(default_factory=lambda: {'select': 30})
    labels_per_class: Dict[str, int] = field(default_factory=dict)  # overrides per task
    holdout_per_class: Optional[int] = None  # None: the configs' 500
    batch_size: Optional[int] = None  # pretraining; None: the configs' 256 (lr scales with it)
    deadline: float = math.inf


# --------------------------------------------------------------------------- config edits
def load_config(path: str, settings: Settings, work_dir: Path, workers: Optional[int] = None):
    from mmengine.config import Config

    cfg = Config.fromfile(str(REPO / path))
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'{work_dir.name}_{time.strftime("%H%M%S")}'
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(name)
        if loader is None:
            continue
        # not persistent: a finished runner's workers must not outlive it in this process
        loader.num_workers = settings.workers if workers is None else workers
        loader.persistent_workers = False
        dataset = loader.dataset
        while dataset is not None:
            if 'data_root' in dataset:
                dataset.data_root = settings.data_root
            dataset = dataset.get('dataset')
    return cfg


def set_epochs(cfg, epochs: int) -> None:
    """A schedule of ``epochs``: the loop, the cosine's end and the checkpoint interval."""
    cfg.train_cfg.max_epochs = epochs
    cosine = [s for s in cfg.param_scheduler if s.type == 'CosineAnnealingLR']
    cosine[-1].end = epochs
    warmups = [s for s in cfg.param_scheduler if s.type == 'LinearLR' and s.by_epoch]
    if warmups and warmups[0].end >= epochs:  # epoch warm-up as long as the run: shorten
        warmups[0].end = cosine[-1].begin = epochs // 10
        if epochs < 10:  # under an epoch of warm-up: none
            cfg.param_scheduler = [s for s in cfg.param_scheduler if s is not warmups[0]]
    cfg.default_hooks.checkpoint.interval = epochs
    if 'val_interval' in cfg.train_cfg:
        cfg.train_cfg.val_interval = epochs  # validated once, after the last epoch


def pretraining_config(run: Pretraining, settings: Settings):
    cfg = load_config(run.config, settings, settings.work_dir / run.run_id)
    set_epochs(cfg, run.epochs)
    if run.lr is not None:
        cfg.optim_wrapper.optimizer.lr = run.lr
    if run.target_rms is not None:
        hook = next(h for h in cfg.custom_hooks if h.type == 'InitialStepSizeHook')
        hook.target_rms = run.target_rms
    if run.num_steps is not None:
        cfg.model.num_steps = run.num_steps
    if run.train_images:
        cfg.train_dataloader.dataset.indices = run.train_images
    if settings.batch_size:
        cfg.train_dataloader.batch_size = settings.batch_size
    return cfg


def downstream_config(task: str, checkpoint: Optional[str], settings: Settings, work_dir):
    """Task 'select' is 'ft-k100' with the select phase's shorter schedule."""
    # in-memory 28-px images and a light pipeline: workers would cost more than they save
    path = DOWNSTREAM['ft-k100' if task == 'select' else task]
    cfg = load_config(path, settings, work_dir, workers=0)
    set_epochs(cfg, settings.ft_epochs.get(task, cfg.train_cfg.max_epochs))
    if task in settings.labels_per_class:
        cfg.train_dataloader.dataset.num_per_class = settings.labels_per_class[task]
    if settings.holdout_per_class is not None:
        cfg.train_dataloader.dataset.holdout_per_class = settings.holdout_per_class
        cfg.val_dataloader.dataset.holdout_per_class = settings.holdout_per_class
    cfg.model.backbone.init_cfg = (
        dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.') if checkpoint else None
    )
    return cfg


# --------------------------------------------------------------------------- running
def train(cfg):
    """Train with mmengine's Runner; (runner, seconds)."""
    from mmengine.runner import Runner

    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    return runner, time.perf_counter() - start


def restoration_gains(model, cfg, settings: Settings) -> Dict[str, float]:
    """Mean PSNR gain (dB) of the last step over the corrupted input, per corruption, on the
    first PSNR_IMAGES test images (corruptions drawn with seed 0)."""
    from mmengine.dataset import default_collate
    from mmpretrain.datasets import FashionMNIST
    from mmpretrain.registry import TRANSFORMS

    from mmpretrain_ebm.visualization.restoration_chain import (
        compute_restoration_chain,
        find_corruptions,
        seeded_rng,
    )

    test = FashionMNIST(data_root=settings.data_root, test_mode=True, download=False)
    images = [test.get_data_info(i)['img'] for i in range(min(PSNR_IMAGES, len(test)))]
    pack = TRANSFORMS.build(dict(type='PackInputs'))
    gains = {}
    for part in find_corruptions(cfg.train_dataloader.dataset.pipeline):
        corrupt = TRANSFORMS.build(part)
        with seeded_rng(0):
            samples = [pack(corrupt(dict(img=img))) for img in images]
        clean, corrupted = model.data_preprocessor(default_collate(samples), False)['inputs']
        chain = compute_restoration_chain(model, clean, corrupted, corrupt.name, [])
        psnr = chain.psnr.mean(axis=0)
        gains[corrupt.name] = dict(
            psnr_corrupted=float(psnr[0]), psnr_last=float(psnr[-1]), gain=float(psnr[-1] - psnr[0])
        )
    return gains


class Study:
    """Runs pretraining and downstream cells, keeping ``results.json`` up to date."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = settings.work_dir / 'results.json'
        self.results = (
            json.loads(self.path.read_text())
            if self.path.exists()
            else dict(pretraining={}, downstream={}, selection={})
        )

    def save(self) -> None:
        self.settings.work_dir.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.results, indent=1))
        write_report(self.results, self.settings.work_dir)

    def out_of_time(self) -> bool:
        return time.time() > self.settings.deadline

    def pretrain(self, run: Pretraining) -> Optional[dict]:
        done = self.results['pretraining'].get(run.run_id)
        if done or self.out_of_time():
            return done
        print(f'[study] pretraining {run.run_id}', flush=True)
        cfg = pretraining_config(run, self.settings)
        runner, seconds = train(cfg)
        loader = cfg.train_dataloader
        images = run.epochs * len(runner.train_dataloader) * loader.batch_size
        record = dict(
            asdict(run),
            recipe=run.recipe,
            checkpoint=str(Path(cfg.work_dir) / f'epoch_{run.epochs}.pth'),
            minutes=seconds / 60,
            images_per_s=images / seconds,
            device=str(next(runner.model.parameters()).device),
        )
        if run.method == 'energy':
            model = runner.model.module if hasattr(runner.model, 'module') else runner.model
            record['alpha'] = float(model.alpha.detach())
            record['restoration'] = restoration_gains(model, cfg, self.settings)
        self.results['pretraining'][run.run_id] = record
        self.save()
        return record

    def downstream(self, source: str, checkpoint: Optional[str], task: str) -> Optional[dict]:
        key = f'{source}/{task}'
        done = self.results['downstream'].get(key)
        if done or self.out_of_time():
            return done
        print(f'[study] {task} from {source}', flush=True)
        work_dir = self.settings.work_dir / source / task
        cfg = downstream_config(task, checkpoint, self.settings, work_dir)
        runner, seconds = train(cfg)
        val = float(runner.message_hub.get_scalar('val/accuracy/top1').current())
        test = float(runner.test()['accuracy/top1'])
        record = dict(source=source, task=task, val_top1=val, test_top1=test, minutes=seconds / 60)
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

    def select(self, epochs, train_images, methods=('energy', 'mae'), imported=()) -> None:
        """Run the candidates of ``methods``, then choose each method's best by validation
        top-1 among the candidates measured here or in ``imported`` results files (another
        machine's select phase: their scores, not their checkpoints, are used)."""
        runs = candidates(epochs, train_images)
        for run in runs:
            if run.method in methods:
                self.evaluate(run, ['select'])
        scores = {}  # recipe -> (validation top-1, where measured)
        for origin, results in [(str(p), json.loads(Path(p).read_text())) for p in imported] + [
            ('here', self.results)
        ]:
            for key, record in results['downstream'].items():
                source, task = key.rsplit('/', 1)
                if task == 'select' and source in results['pretraining']:
                    recipe = results['pretraining'][source]['recipe']
                    scores[recipe] = (record['val_top1'], origin)
        for method in ('energy', 'mae'):
            scored = [
                (scores[run.recipe], run)
                for run in runs
                if run.method == method and run.recipe in scores
            ]
            if scored:
                (val, where), best = max(scored, key=lambda pair: pair[0][0])
                self.results['selection'][method] = asdict(best)
                self.results.setdefault('selection_scores', {})[method] = [
                    dict(recipe=run.recipe, val_top1=score, measured=origin)
                    for (score, origin), run in scored
                ]
        self.save()

    def chosen(self, method: str, epochs: int, train_images: Optional[int]) -> Pretraining:
        chosen = self.results['selection'].get(method)
        if chosen is None:
            return Pretraining(method, epochs, train_images=train_images)
        return replace(Pretraining(**chosen), epochs=epochs, train_images=train_images)

    def compare(self, budgets: List[int], tasks: List[str], train_images, full: bool) -> None:
        """``tasks`` at every budget; with ``full``, also 'ft-full' at the longest."""
        longest = tasks + ['ft-full'] * full
        self.evaluate(None, longest)
        for epochs in sorted(budgets, reverse=True):  # the long point first
            for method in ('energy', 'mae'):
                run = self.chosen(method, epochs, train_images)
                self.evaluate(run, longest if epochs == max(budgets) else tasks)
        # MAE for as long as energy's longest budget took (equal wall-clock)
        energy = self.results['pretraining'].get(
            self.chosen('energy', max(budgets), train_images).run_id
        )
        mae = self.results['pretraining'].get(self.chosen('mae', max(budgets), train_images).run_id)
        if energy and mae:
            epochs = max(1, round(energy['minutes'] / (mae['minutes'] / mae['epochs'])))
            self.evaluate(self.chosen('mae', epochs, train_images), longest)


# --------------------------------------------------------------------------- report
def write_report(results: dict, folder: Path) -> None:
    """results.md (selection and comparison tables) and results.png."""
    down = results['downstream']
    tasks = [t for t in ('select', *DOWNSTREAM) if any(k.endswith('/' + t) for k in down)]

    def cell(source: str, task: str, split: str = 'test_top1') -> str:
        record = down.get(f'{source}/{task}')
        return f'{record[split]:.2f}' if record else ''

    lines = ['# Fashion-MNIST study', '']
    header = '| pretraining | epochs | minutes | images/s | ' + ' | '.join(
        f'{t} val | {t} test' for t in tasks
    )
    lines += [
        'Top-1 (%) on the 5,000 held-out training images (val) and the 10,000 test images (test).',
        '',
        header + ' | restoration gain (dB) |',
        '|' + '---|' * (5 + 2 * len(tasks)),
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
        rate = f'{record["images_per_s"]:.0f}' if record else ''
        gains = ', '.join(
            f'{name} {value["gain"]:+.2f}'
            for name, value in ((record or {}).get('restoration') or {}).items()
        )
        scores = ' | '.join(f'{cell(source, t, "val_top1")} | {cell(source, t)}' for t in tasks)
        lines.append(f'| {name} | {epochs} | {minutes} | {rate} | {scores} | {gains} |')
    if results['selection']:
        lines += ['', 'Chosen by validation top-1 of "select" (ft-k100, shorter):', '']
        for method, run in results['selection'].items():
            lines.append(f'- {method}: {Pretraining(**run).recipe}')
    (folder / 'results.md').write_text('\n'.join(lines) + '\n')
    plot(results, folder / 'results.png', [t for t in tasks if t != 'select'])


def plot(results: dict, path: Path, tasks: List[str]) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    if not tasks:
        return
    figure, axes = plt.subplots(len(tasks), 2, figsize=(9, 3.2 * len(tasks)), squeeze=False)
    chosen = {m: Pretraining(**r).recipe for m, r in results['selection'].items()}
    for row, task in enumerate(tasks):
        scratch = results['downstream'].get(f'scratch/{task}')
        for col, x_key in enumerate(('epochs', 'minutes')):
            ax = axes[row][col]
            for method in ('energy', 'mae'):
                recipe = chosen.get(method)
                points = sorted(
                    (record[x_key], results['downstream'][f'{rid}/{task}']['test_top1'])
                    for rid, record in results['pretraining'].items()
                    if record['method'] == method
                    and (recipe is None or record['recipe'] == recipe)
                    and f'{rid}/{task}' in results['downstream']
                )
                if points:
                    ax.plot(*zip(*points), marker='o', label=recipe or method)
            if scratch:
                ax.axhline(scratch['test_top1'], color='grey', linestyle='--', label='scratch')
            ax.set_xlabel(f'pretraining {x_key}')
            ax.set_ylabel(f'{task} test top-1 (%)')
            ax.grid(alpha=0.3)
        axes[row][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# --------------------------------------------------------------------------- command line
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--phase', choices=('select', 'compare', 'all'), default='compare')
    parser.add_argument('--epochs', type=int, nargs='+', default=None, help='budgets')
    parser.add_argument('--full', action='store_true', help='also fine-tune on all labels')
    grid = parser.add_mutually_exclusive_group()
    grid.add_argument('--quick', action='store_true', help='a 10-minute check')
    grid.add_argument('--long', action='store_true', help='all images, 1 3 10 epochs, --full')
    parser.add_argument('--data-root', default='data/fashion_mnist')
    parser.add_argument('--work-dir', default='work_dirs/fashion_mnist_study')
    parser.add_argument('--workers', type=int, default=2, help='dataloader workers')
    parser.add_argument(
        '--train-images', type=int, default=None, help='pretraining subset (0: all 60,000)'
    )
    parser.add_argument(
        '--select-methods', nargs='+', choices=('energy', 'mae'), default=['energy', 'mae']
    )
    parser.add_argument(
        '--selection-from', nargs='*', default=[], help="other runs' results.json to choose from"
    )
    parser.add_argument(
        '--batch-size', type=int, default=None, help='pretraining batch (default 256; lr scales)'
    )
    parser.add_argument('--ft-epochs', type=int, default=None, help='ft-k100 (default 100)')
    parser.add_argument('--probe-epochs', type=int, default=None, help='probe (default 30)')
    parser.add_argument('--holdout-per-class', type=int, default=None, help='default 500')
    parser.add_argument('--labels-per-class', type=int, default=None, help='ft-k100: 100')
    parser.add_argument('--probe-per-class', type=int, default=None, help='probe: 1000')
    parser.add_argument(
        '--time-limit', type=float, default=None, help='minutes; no new run starts after'
    )
    args = parser.parse_args(argv)
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
    if args.workers < 0:
        parser.error(f'--workers must be >= 0, got {args.workers}')
    if args.time_limit is not None and args.time_limit <= 0:
        parser.error(f'--time-limit must be > 0 minutes, got {args.time_limit}')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    root = Path(args.data_root)
    missing = [
        name
        for name in ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte')
        + ('t10k-labels-idx1-ubyte',)
        if not (root / name).is_file()
    ]
    if missing:
        print(
            f'error: {root} lacks {", ".join(missing)}; prepare it with '
            f'python tools/dataset_converters/prepare_fashion_mnist.py (README)',
            file=sys.stderr,
        )
        return 2
    settings = Settings(
        data_root=str(root.resolve()),
        work_dir=Path(args.work_dir).resolve(),
        workers=args.workers,
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
        settings.ft_epochs.update({'ft-k100': 50, 'probe': 10})
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
    if args.phase in ('select', 'all'):
        study.select(min(epochs), train_images, args.select_methods, args.selection_from)
    if args.phase in ('compare', 'all'):
        study.compare(epochs, ['ft-k100', 'probe'], train_images, args.full)
    study.save()
    print((settings.work_dir / 'results.md').read_text())
    return 0


if __name__ == '__main__':
    sys.exit(main())
