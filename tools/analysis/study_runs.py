"""The pretraining study's runs: recipes, the config edits that apply them, training and
restoration gains (used by ``study.py``; the datasets: ``study_datasets.py``)."""

import math
import re
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional

from study_datasets import FASHION_MNIST, StudyData

REPO = Path(__file__).resolve().parents[2]
#: The downstream tasks, in the order of the report's columns.
TASKS = ('ft-k100', 'probe', 'ft-full')
PSNR_IMAGES = 256


@dataclass(frozen=True)
class Pretraining:
    """One pretraining run: a method, its recipe and its length."""

    method: str  # 'energy' or the baseline's ('mae', 'spark')
    epochs: int
    corruption: str = 'gridmask'  # energy only
    lr: Optional[float] = None  # None: the config's
    target_rms: Optional[float] = None  # energy: first-step RMS (InitialStepSizeHook)
    num_steps: Optional[int] = None  # energy: N
    alpha_lr_mult: Optional[float] = None  # energy: alpha's lr multiplier (None: 1)
    train_images: Optional[int] = None  # None: all 60,000
    batch_size: Optional[int] = None  # None: the config's 256 (the lr scales with it)

    @property
    def recipe(self) -> str:
        parts = [self.method] + ([self.corruption] if self.method == 'energy' else [])
        for key in ('lr', 'target_rms', 'num_steps', 'alpha_lr_mult'):
            value = getattr(self, key)
            if value is not None:
                parts.append(f'{key}={value:g}')
        return ' '.join(parts)

    @property
    def run_id(self) -> str:
        """Recipe, epochs, images and batch: a run of other settings has another id (and
        work dir), so it never resumes or reuses this one's."""
        subset = f'_n{self.train_images}' if self.train_images else ''
        batch = f'_b{self.batch_size}' if self.batch_size else ''
        return f'{self.recipe.replace(" ", "_")}_e{self.epochs}{subset}{batch}'

    def config(self, data: StudyData) -> str:
        if self.method == 'energy':
            return data.energy_config.format(self.corruption)
        return data.baseline_config


def candidates(
    epochs: int, train_images: Optional[int], data: StudyData = FASHION_MNIST
) -> List[Pretraining]:
    """The recipes the select phase compares (the results pages: what was tried)."""
    energy = [{'corruption': data.default_corruption, **kw} for kw in data.energy_candidates]
    return [Pretraining('energy', epochs, train_images=train_images, **kw) for kw in energy] + [
        Pretraining(data.baseline, epochs, train_images=train_images, **kw)
        for kw in data.baseline_candidates
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
    data: StudyData = FASHION_MNIST

    def sized(self, run: 'Pretraining') -> 'Pretraining':
        """``run`` at this study's pretraining batch size."""
        return replace(run, batch_size=self.batch_size)


# --------------------------------------------------------------------------- config edits
def load_config(path: str, settings: Settings, work_dir: Path, workers: Optional[int] = None):
    from mmengine.config import Config

    cfg = Config.fromfile(str(REPO / path))
    cfg.work_dir = str(work_dir)
    # unique: mmengine reuses the logger of an experiment name (+ the start second), so a
    # runner of the same work_dir name started within that second would log into another
    cfg.experiment_name = f'{work_dir.name}_{uuid.uuid4().hex[:8]}'
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(name)
        if loader is None:
            continue
        # not persistent: a finished runner's workers must not outlive it in this process
        loader.num_workers = settings.workers if workers is None else workers
        loader.persistent_workers = False
        set_data_root(loader.dataset, settings.data_root)
    for hook in cfg.get('custom_hooks', []):  # e.g. the k-NN hook's labelled splits
        for key in ('train_dataset', 'val_dataset'):
            if key in hook:
                set_data_root(hook[key], settings.data_root)
    if 'test_set' in cfg:  # the held-out images of the restoration gains
        set_data_root(cfg.test_set, settings.data_root)
    return cfg


def set_data_root(dataset, data_root: str) -> None:
    """``data_root`` for a dataset config and the datasets it wraps."""
    while dataset is not None:
        if 'data_root' in dataset:
            dataset.data_root = data_root
        dataset = dataset.get('dataset')


def set_epochs(cfg, epochs: int) -> None:
    """A schedule of ``epochs``: the loop, the cosine's end and the checkpoint interval."""
    cfg.train_cfg.max_epochs = epochs
    cosine = [s for s in cfg.param_scheduler if s.type == 'CosineAnnealingLR']
    cosine[-1].end = epochs
    for scheduler in cfg.param_scheduler:  # SparK's weight decay follows the run's length
        if scheduler.type == 'CosineAnnealingWeightDecay':
            scheduler.end = epochs
    warmups = [s for s in cfg.param_scheduler if s.type == 'LinearLR' and s.by_epoch]
    if warmups and warmups[0].end >= epochs:  # epoch warm-up as long as the run: shorten
        warmups[0].end = cosine[-1].begin = epochs // 10
        if epochs < 10:  # under an epoch of warm-up: none
            cfg.param_scheduler = [s for s in cfg.param_scheduler if s is not warmups[0]]
    cfg.default_hooks.checkpoint.interval = epochs
    if 'val_interval' in cfg.train_cfg:
        cfg.train_cfg.val_interval = epochs  # validated once, after the last epoch


def pretraining_config(run: Pretraining, settings: Settings):
    cfg = load_config(run.config(settings.data), settings, settings.work_dir / run.run_id)
    set_epochs(cfg, run.epochs)
    cfg.default_hooks.checkpoint.interval = 1  # the latest epoch kept, to resume from
    if run.lr is not None:
        cfg.optim_wrapper.optimizer.lr = run.lr
    if run.target_rms is not None:
        hook = next(h for h in cfg.custom_hooks if h.type == 'InitialStepSizeHook')
        hook.target_rms = run.target_rms
    if run.num_steps is not None:
        cfg.model.num_steps = run.num_steps
    if run.alpha_lr_mult is not None:
        cfg.optim_wrapper.paramwise_cfg.custom_keys['alpha'].lr_mult = run.alpha_lr_mult
    if run.train_images:
        cfg.train_dataloader.dataset.indices = run.train_images
    if run.batch_size:
        cfg.train_dataloader.batch_size = run.batch_size
    for hook in cfg.get('custom_hooks', []):
        if hook.type == 'KNNEvaluationHook':
            knn_splits(hook, settings)
    return cfg


def knn_splits(hook, settings: Settings) -> None:
    """The online k-NN's neighbours are the 1,000-label fine-tune's labelled images and its
    classified images the first of the fine-tune's held-out ones: kept so under the study's
    ``labels_per_class`` and ``holdout_per_class``."""
    train, val = hook.train_dataset, hook.val_dataset
    if 'ft-k100' in settings.labels_per_class:
        train.num_per_class = settings.labels_per_class['ft-k100']
    if settings.holdout_per_class is not None:
        train.holdout_per_class = settings.holdout_per_class
        val.holdout_per_class = min(val.holdout_per_class, settings.holdout_per_class)


def pretraining_settings(cfg) -> dict:
    """The settings a pretraining record stands for, read from its resolved config."""
    step_size = [h for h in cfg.get('custom_hooks', []) if h.type == 'InitialStepSizeHook']
    alpha = cfg.optim_wrapper.get('paramwise_cfg', {}).get('custom_keys', {}).get('alpha', {})
    return dict(
        model=cfg.model.type,
        pipeline=[t.type for t in cfg.train_dataloader.dataset.pipeline],
        epochs=cfg.train_cfg.max_epochs,
        train_images=cfg.train_dataloader.dataset.get('indices'),
        batch_size=cfg.train_dataloader.batch_size,
        lr=cfg.optim_wrapper.optimizer.lr,
        num_steps=cfg.model.get('num_steps'),
        target_rms=step_size[0].target_rms if step_size else None,
        alpha_lr_mult=alpha.get('lr_mult'),
    )


def downstream_settings(cfg) -> dict:
    """The settings a downstream record stands for, read from its resolved config: the
    schedule, the labelled images per class, the held-out images per class, the seed."""
    train = cfg.train_dataloader
    return dict(
        epochs=cfg.train_cfg.max_epochs,
        labels_per_class=train.dataset.num_per_class,
        holdout_per_class=train.dataset.holdout_per_class,
        seed=train.dataset.seed,
        batch_size=train.batch_size,
        lr=cfg.optim_wrapper.optimizer.lr,
    )


def settings_mismatch(recorded: Optional[dict], wanted: dict) -> List[str]:
    """``'key: recorded X, wanted Y'`` for every setting that differs (all of them for a
    record that carries none: recorded before records were keyed by their settings)."""
    if recorded is None:
        return ['the record carries no settings (recorded before they were kept)']
    return [
        f'{key}: recorded {recorded.get(key)!r}, this run {wanted.get(key)!r}'
        for key in sorted(set(recorded) | set(wanted))
        if recorded.get(key) != wanted.get(key)
    ]


def split_task(task: str):
    """'ft-k100-seed3' -> ('ft-k100', 3); 'probe' -> ('probe', None). A seed redraws the
    labelled subset and the held-out split (``ClassBalancedSplit``) and seeds the run."""
    match = re.fullmatch(r'(select|{})(?:-seed(\d+))?'.format('|'.join(TASKS)), task)
    if match is None:
        raise ValueError(
            f"unknown downstream task {task!r}: allowed are 'select', {', '.join(TASKS)}, "
            "each optionally with '-seed<N>'"
        )
    base, seed = match.groups()
    return base, None if seed is None else int(seed)


def downstream_config(task: str, checkpoint: Optional[str], settings: Settings, work_dir):
    """Task 'select' is 'ft-k100' with the select phase's shorter schedule; '<task>-seed<N>'
    is <task> with seed N (see ``split_task``)."""
    base, seed = split_task(task)
    # small images (28 px in memory, 32-px JPEG files) and a light pipeline: workers would
    # cost more than they save
    path = settings.data.downstream['ft-k100' if base == 'select' else base]
    cfg = load_config(path, settings, work_dir, workers=0)
    set_epochs(cfg, settings.ft_epochs.get(base, cfg.train_cfg.max_epochs))
    if base in settings.labels_per_class:
        cfg.train_dataloader.dataset.num_per_class = settings.labels_per_class[base]
    if seed is not None:  # train and held-out parts of one seed never overlap
        cfg.randomness.seed = seed
        cfg.train_dataloader.dataset.seed = seed
        cfg.val_dataloader.dataset.seed = seed
    if settings.holdout_per_class is not None:
        cfg.train_dataloader.dataset.holdout_per_class = settings.holdout_per_class
        cfg.val_dataloader.dataset.holdout_per_class = settings.holdout_per_class
    cfg.model.backbone.init_cfg = (
        dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.') if checkpoint else None
    )
    return cfg


# --------------------------------------------------------------------------- running
def epochs_done(work_dir: Path) -> int:
    """The epoch of the checkpoint mmengine would resume ``work_dir`` from (0: none)."""
    from mmengine.runner import find_latest_checkpoint

    latest = find_latest_checkpoint(str(work_dir)) if work_dir.is_dir() else None
    match = re.fullmatch(r'epoch_(\d+)\.pth', Path(latest).name) if latest else None
    return int(match.group(1)) if match else 0


#: Checkpoint meta key: seconds of training up to this checkpoint, summed over the processes
#: that trained the run (a resumed run adds its own to those of the checkpoint it resumed).
TRAIN_SECONDS = 'study_train_seconds'


def train_time_hook():
    """A hook that keeps ``meta[TRAIN_SECONDS]`` in every checkpoint: the seconds of the
    checkpoint this process resumed from (``None`` if it lacks them) plus this process's since
    its training loop started; with an online k-NN hook, its training seconds (the same sum,
    the k-NN evaluations left out, so that they do not count as pretraining compute)."""
    from mmengine.hooks import Hook

    from mmpretrain_ebm.engine.hooks.knn_evaluation_hook import META_KEY as KNN_META_KEY

    class TrainTimeHook(Hook):
        priority = 'VERY_LOW'

        def __init__(self) -> None:
            self.before: Optional[float] = 0.0
            self.start: Optional[float] = None

        def after_load_checkpoint(self, runner, checkpoint) -> None:
            self.before = checkpoint.get('meta', {}).get(TRAIN_SECONDS)

        def before_train(self, runner) -> None:
            self.start = time.perf_counter()

        def before_save_checkpoint(self, runner, checkpoint) -> None:
            seconds = None
            if self.before is not None and self.start is not None:
                seconds = self.before + time.perf_counter() - self.start
            meta = checkpoint.setdefault('meta', {})
            knn = meta.get(KNN_META_KEY)  # saved just before by the k-NN hook (priority LOW)
            if knn is not None and seconds is not None:
                seconds = knn['train_s']  # the same sum with its evaluations left out
            meta[TRAIN_SECONDS] = seconds

    return TrainTimeHook()


def train(cfg):
    """Train with mmengine's Runner; (runner, seconds). Checkpoints keep the training
    seconds summed over processes (:data:`TRAIN_SECONDS`)."""
    from mmengine.runner import Runner

    runner = Runner.from_cfg(cfg)
    runner.register_hook(train_time_hook())
    start = time.perf_counter()
    runner.train()
    return runner, time.perf_counter() - start


def train_seconds(checkpoint: str) -> Optional[float]:
    """The training seconds summed over processes that ``checkpoint`` holds (``None``: a
    run resumed from a checkpoint saved without them)."""
    import torch

    import mmpretrain_ebm  # noqa: F401  (allow-lists mmengine's checkpoint types)

    meta = torch.load(checkpoint, map_location='cpu', weights_only=True).get('meta', {})
    return meta.get(TRAIN_SECONDS)


def restoration_gains(model, cfg) -> Dict[str, float]:
    """Mean PSNR gain (dB) of the last step over the corrupted input, per corruption, on those
    of the first PSNR_IMAGES test images it changed (``cfg.test_set`` read by
    ``cfg.load_steps``; corruptions drawn with seed 0)."""
    from mmengine.dataset import default_collate
    from mmpretrain.registry import DATASETS, TRANSFORMS

    from mmpretrain_ebm.visualization.restoration_chain import (
        compute_restoration_chain,
        find_corruptions,
        seeded_rng,
    )

    test = DATASETS.build(dict(cfg.test_set, pipeline=cfg.load_steps))
    images = [test[i]['img'] for i in range(min(PSNR_IMAGES, len(test)))]
    pack = TRANSFORMS.build(dict(type='PackInputs'))
    gains = {}
    for part in find_corruptions(cfg.train_dataloader.dataset.pipeline):
        corrupt = TRANSFORMS.build(part)
        with seeded_rng(0):
            samples = [pack(corrupt(dict(img=img))) for img in images]
        clean, corrupted = model.data_preprocessor(default_collate(samples), False)['inputs']
        chain = compute_restoration_chain(model, clean, corrupted, corrupt.name, [])
        psnr = chain.mean_psnr()  # over the images it changed (not a grey one by colorization)
        gains[corrupt.name] = dict(
            psnr_corrupted=float(psnr[0]),
            psnr_last=float(psnr[-1]),
            gain=float(psnr[-1] - psnr[0]),
            images=int(chain.changed.sum()),
        )
    return gains
