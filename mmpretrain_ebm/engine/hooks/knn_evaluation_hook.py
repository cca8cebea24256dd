"""Online k-NN evaluation of the features of a model being pretrained."""

import json
import math
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.dataset import default_collate
from mmengine.dist import is_main_process
from mmengine.hooks import Hook, LoggerHook
from mmengine.runner import EpochBasedTrainLoop, Runner
from mmpretrain.registry import DATASETS, HOOKS
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset

from ...visualization.restoration_chain import unwrap_model
from .knn_features import (  # noqa: F401  (weighted_knn_top1: the tests reach it here)
    POOL_TYPES,
    every_cell_active,
    pool_features,
    takes_mask,
    weighted_knn_top1,
)

#: Key of ``checkpoint['meta']`` holding the history (so a resumed run keeps its curve).
META_KEY = 'knn_evaluation'
#: Name of the scalar in the logs, the visualizer and the history.
METRIC = 'knn_top1'


def _check_int(value, what: str, low: int, none_allowed: bool = False) -> None:
    if value is None and none_allowed:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        allowed = f'an int >= {low}' + (' or None' if none_allowed else '')
        raise ValueError(f'{what} must be {allowed}, got {value!r}')


@HOOKS.register_module()
class KNNEvaluationHook(Hook):
    """Weighted k-NN top-1 on frozen, pooled features of a labelled split during pretraining.

    Every ``interval`` epochs (epoch-based train loops) or iterations (iteration-based
    loops; ``by_epoch`` overrides the choice), after the last one and, with
    ``eval_at_start``, before the first (the initialization's score), the features of the
    images of ``train_dataset`` and ``val_dataset`` are computed by the model being trained
    and each val image is classified by the weighted k-NN vote of its ``k`` nearest train
    images (cosine similarity, weights ``exp(sim / temperature)``, as in InstDisc and DINO;
    :func:`weighted_knn_top1`). The top-1 (percent) is logged as ``knn_top1``: a log line,
    the visualizer's scalars (``vis_data/scalars.json`` and the run's json log beside the
    losses, TensorBoard if configured; step = iterations done, with ``epoch`` and ``iter``),
    the message hub (``knn/knn_top1``), :attr:`history` and ``<work_dir>/knn_history.json``
    (a list of ``{epoch, iter, knn_top1, train_s, eval_s}``; ``train_s``: wall seconds of
    training before this evaluation, all resumed processes together as recorded in the
    checkpoints, k-NN evaluations excluded; ``eval_s``: this evaluation's seconds). The
    history travels in ``checkpoint['meta']['knn_evaluation']``, so a resumed run continues
    its curve; a run that starts at iteration 0 (also with ``load_from``) starts a new one.

    Features: the model (unwrapped from DDP) in eval mode under ``torch.no_grad()`` (the
    train/eval flag of every module is restored afterwards, BatchNorm statistics are not
    updated), the images normalized by the model's data preprocessor, then
    ``model.backbone(x)`` (a backbone whose ``forward`` takes ``mask``, as MAE's ``MAEViT``,
    gets ``mask=None``: every patch, no masking) pooled by ``pool_type``: ``'auto'`` pools
    as the model's head does when it has a ``pool`` method (``EnergyHead``: the features
    the energy is computed from) and otherwise by the output's shape: [B, C] as it is,
    tokens [B, L, C] by the mean of the patch tokens (the backbone's ``num_extra_tokens``
    prefix, e.g. the class token, skipped; MAE: the final-normed patch tokens), maps
    [B, C, H, W] by global average pooling. Only the main process evaluates.

    Args:
        train_dataset: Config of the labelled dataset the neighbours come from (built with
            mmpretrain's ``DATASETS``; its ``pipeline`` should be test-style: load, resize or
            crop deterministically, ``PackInputs``). Without a ``pipeline`` it gets the
            config's ``test_dataloader.dataset.pipeline``; a wrapper (a config with a
            ``dataset``, e.g. ``ClassBalancedSplit``) is built as it is.
        val_dataset: Config of the labelled dataset that is classified (as ``train_dataset``).
        interval: Evaluate every this many epochs (or iterations).
        k: Neighbours per vote (>= 1; at most the number of train images are used).
        temperature: Of the vote weights (> 0).
        max_train, max_val: Use at most this many images of each dataset (a fixed random
            subset drawn by ``seed``); None: all.
        batch_size: Images per forward pass.
        num_workers: Data loader workers (0: in the training process).
        pool_type: One of ``('auto', 'cls_token', 'mean_tokens', 'gap', 'none')``.
        by_epoch: Count ``interval`` in epochs (True) or iterations (False); None: epochs for
            an ``EpochBasedTrainLoop``, iterations otherwise.
        eval_at_start: Also evaluate before the first iteration of a run from iteration 0.
        cache: Keep the loaded, collated images (uint8) in memory after the first evaluation
            (the pipelines must be deterministic); False reloads them every time.
        seed: Of the subsets of ``max_train`` / ``max_val``.
    """

    priority = 'LOW'

    def __init__(
        self,
        train_dataset: dict,
        val_dataset: dict,
        interval: int = 1,
        k: int = 20,
        temperature: float = 0.07,
        max_train: Optional[int] = None,
        max_val: Optional[int] = None,
        batch_size: int = 256,
        num_workers: int = 0,
        pool_type: str = 'auto',
        by_epoch: Optional[bool] = None,
        eval_at_start: bool = True,
        cache: bool = True,
        seed: int = 0,
    ) -> None:
        for name, value in (('train_dataset', train_dataset), ('val_dataset', val_dataset)):
            if not isinstance(value, dict) or 'type' not in value:
                raise ValueError(f'{name} must be a dataset config dict with a type, got {value!r}')
        _check_int(interval, 'interval', low=1)
        _check_int(k, 'k', low=1)
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, (int, float))
            or not (temperature > 0 and math.isfinite(temperature))
        ):
            raise ValueError(f'temperature must be a finite number > 0, got {temperature!r}')
        _check_int(max_train, 'max_train', low=1, none_allowed=True)
        _check_int(max_val, 'max_val', low=1, none_allowed=True)
        _check_int(batch_size, 'batch_size', low=1)
        _check_int(num_workers, 'num_workers', low=0)
        _check_int(seed, 'seed', low=0)
        if pool_type not in POOL_TYPES:
            raise ValueError(f'pool_type must be one of {POOL_TYPES}, got {pool_type!r}')
        for name, value in (('eval_at_start', eval_at_start), ('cache', cache)):
            if not isinstance(value, bool):
                raise ValueError(f'{name} must be True or False, got {value!r}')
        if by_epoch is not None and not isinstance(by_epoch, bool):
            raise ValueError(f'by_epoch must be True, False or None, got {by_epoch!r}')
        self.train_cfg = dict(train_dataset)
        self.val_cfg = dict(val_dataset)
        self.interval = interval
        self.k = k
        self.temperature = float(temperature)
        self.max_train = max_train
        self.max_val = max_val
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pool_type = pool_type
        self.by_epoch = by_epoch
        self.eval_at_start = eval_at_start
        self.cache = cache
        self.seed = seed
        #: ``{epoch, iter, knn_top1, train_s, eval_s}`` of every evaluation so far.
        self.history: List[Dict[str, float]] = []
        self._loaded: Optional[dict] = None
        self._datasets: Dict[str, object] = {}
        self._batches: Dict[str, list] = {}
        self._train_s_before = 0.0
        self._start = 0.0
        self._eval_s = 0.0

    # ------------------------------------------------------------------ checkpoints
    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        record = checkpoint.get('meta', {}).get(META_KEY)
        self._loaded = dict(record) if record is not None else None

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        record = dict(history=[dict(h) for h in self.history], train_s=self._train_seconds())
        checkpoint.setdefault('meta', {})[META_KEY] = record

    # ------------------------------------------------------------------ schedule
    def before_train(self, runner: Runner) -> None:
        if self.by_epoch is None:
            self.by_epoch = isinstance(runner.train_loop, EpochBasedTrainLoop)
        if runner.iter > 0 and self._loaded is not None:  # resumed: continue the curve
            self.history = [h for h in self._loaded['history'] if h['iter'] <= runner.iter]
            self._train_s_before = float(self._loaded['train_s'])
        else:
            self.history, self._train_s_before = [], 0.0
        self._start, self._eval_s = time.perf_counter(), 0.0
        if self.eval_at_start and runner.iter == 0:
            self._evaluate(runner)

    def after_train_epoch(self, runner: Runner) -> None:
        if self.by_epoch and (
            self.every_n_epochs(runner, self.interval) or self.is_last_train_epoch(runner)
        ):
            self._evaluate(runner)

    def after_train_iter(
        self, runner: Runner, batch_idx: int, data_batch=None, outputs=None
    ) -> None:
        if not self.by_epoch and (
            self.every_n_train_iters(runner, self.interval) or runner.iter + 1 == runner.max_iters
        ):
            self._evaluate(runner, iters_done=runner.iter + 1)

    # ------------------------------------------------------------------ evaluation
    def _train_seconds(self) -> float:
        return self._train_s_before + time.perf_counter() - self._start - self._eval_s

    def _evaluate(self, runner: Runner, iters_done: Optional[int] = None) -> None:
        """``iters_done``: iterations finished (after_train_iter runs before the counter
        moves on; after_train_epoch after it)."""
        iters = runner.iter if iters_done is None else iters_done
        if any(h['iter'] == iters for h in self.history) or not is_main_process():
            return
        start = time.perf_counter()
        train_s = self._train_seconds()
        model = unwrap_model(runner.model)
        train_feats, train_labels = self.extract(model, 'train', runner)
        val_feats, val_labels = self.extract(model, 'val', runner)
        top1 = weighted_knn_top1(
            train_feats, train_labels, val_feats, val_labels, self.k, self.temperature
        )
        eval_s = time.perf_counter() - start
        self._eval_s += eval_s
        # epochs finished: after_train_epoch runs before the loop counts the epoch
        epoch = runner.epoch + 1 if self.by_epoch and iters > 0 else runner.epoch
        record = dict(epoch=epoch, iter=iters, knn_top1=top1, train_s=train_s, eval_s=eval_s)
        self.history.append(record)
        runner.message_hub.update_scalar(f'knn/{METRIC}', top1)
        json_log = next((h.json_log_path for h in runner.hooks if isinstance(h, LoggerHook)), None)
        scalars = {METRIC: top1, 'epoch': epoch, 'iter': iters}
        runner.visualizer.add_scalars(scalars, step=iters, file_path=json_log)
        runner.logger.info(
            'k-NN (k=%d, T=%g, %d train / %d val images) at epoch %d, iteration %d: '
            '%s %.2f (%.1f s)',
            self.k,
            self.temperature,
            len(train_labels),
            len(val_labels),
            epoch,
            iters,
            METRIC,
            top1,
            eval_s,
        )
        with open(osp.join(runner.work_dir, 'knn_history.json'), 'w') as f:
            json.dump(self.history, f, indent=1)

    def _dataset(self, which: str, runner: Optional[Runner]):
        if which not in self._datasets:
            cfg = dict(self.train_cfg if which == 'train' else self.val_cfg)
            if 'pipeline' not in cfg and 'dataset' not in cfg:  # a wrapper's inner one has it
                test_loader = runner.cfg.get('test_dataloader') if runner is not None else None
                if not test_loader or 'pipeline' not in test_loader.get('dataset', {}):
                    raise ValueError(
                        f'{which}_dataset has no pipeline and the config has no '
                        'test_dataloader.dataset.pipeline to take'
                    )
                cfg['pipeline'] = test_loader['dataset']['pipeline']
            dataset = DATASETS.build(cfg)
            limit = self.max_train if which == 'train' else self.max_val
            if len(dataset) == 0:
                raise ValueError(f'the {which} dataset of KNNEvaluationHook is empty')
            if limit is not None and limit < len(dataset):
                rng = np.random.default_rng([self.seed, 0 if which == 'train' else 1])
                indices = np.sort(rng.choice(len(dataset), limit, replace=False)).tolist()
                dataset = Subset(dataset, indices)
            self._datasets[which] = dataset
        return self._datasets[which]

    def _batches_of(self, which: str, runner: Optional[Runner]):
        if which in self._batches:
            return self._batches[which]
        loader = DataLoader(
            self._dataset(which, runner),
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=default_collate,
        )
        if not self.cache:
            return loader
        self._batches[which] = list(loader)
        return self._batches[which]

    @torch.no_grad()
    def extract(
        self, model: nn.Module, which: str, runner: Optional[Runner] = None
    ) -> Tuple[Tensor, Tensor]:
        """Pooled features [N, C] (float32, CPU) and labels [N] of the ``which`` dataset
        (``'train'`` or ``'val'``) by ``model``, left in the train/eval state it came in."""
        modes = [(module, module.training) for module in model.modules()]
        model.eval()
        try:
            feats, labels = [], []
            for batch in self._batches_of(which, runner):
                data = model.data_preprocessor(batch, training=False)
                feats.append(self.features(model, data['inputs']).float().cpu())
                labels.append(self._labels(batch['data_samples'], which))
        finally:
            for module, training in modes:
                module.training = training
        return torch.cat(feats), torch.cat(labels)

    def features(self, model: nn.Module, inputs: Tensor) -> Tensor:
        """Pooled backbone features of normalized ``inputs`` (see the class docstring)."""
        backbone = model.backbone
        if takes_mask(backbone):  # MAEViT: mask=None gives every patch, unmasked
            out = backbone(inputs, mask=None)
        else:
            with every_cell_active(backbone, inputs):
                out = backbone(inputs)
        head = getattr(model, 'head', None)
        if self.pool_type == 'auto' and callable(getattr(head, 'pool', None)):
            return head.pool(out)
        prefix = getattr(backbone, 'num_extra_tokens', 1)
        return pool_features(out, self.pool_type, prefix)

    @staticmethod
    def _labels(samples: Sequence, which: str) -> Tensor:
        labels = []
        for sample in samples:
            label = sample.get('gt_label') if hasattr(sample, 'get') else None
            if label is None or len(label) == 0:
                raise ValueError(
                    f'the {which} dataset of KNNEvaluationHook gives images without labels '
                    '(gt_label); use a labelled dataset (e.g. CustomDataset with class folders)'
                )
            labels.append(int(label[0]))
        return torch.tensor(labels)
