"""A hook that records, inside an mmseg training run, what the transfer test asserts.

The test runs mmseg's own ``tools/train.py`` in a subprocess (as a user would) with
``tests/test_seg_transfer`` on ``PYTHONPATH``; the tiny config imports this module and adds
the hook. It writes into the work directory:

- ``backbone_before_train.pth``: the backbone's state dict once the runner has initialized
  the model (pretrained weights loaded), before the first iteration;
- ``backbone_after_train.pth``: the same after the last iteration;
- ``probe.json``: the labels of the first validation annotation as the model sees them
  (after ``reduce_zero_label``), the metrics of every validation, and the mIoU of the same
  predictions computed here, independently of mmseg's IoUMetric.
"""

import json
from pathlib import Path

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class TransferProbeHook(Hook):
    """Save the backbone before and after training and the validation metrics."""

    def __init__(self, num_classes: int = 150, ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.record = dict(val_metrics=[], probe_miou=[])
        self._intersection = self._union = None

    def _path(self, runner, name: str) -> Path:
        return Path(runner.work_dir) / name

    def _save_backbone(self, runner, name: str) -> None:
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        state = {
            key: value.detach().cpu().clone() for key, value in model.backbone.state_dict().items()
        }
        torch.save(state, self._path(runner, name))

    def _dump(self, runner) -> None:
        self._path(runner, 'probe.json').write_text(json.dumps(self.record, indent=1))

    def before_train(self, runner) -> None:
        self._save_backbone(runner, 'backbone_before_train.pth')
        sample = runner.val_dataloader.dataset[0]['data_samples']
        self.record['val_gt_labels'] = sorted(sample.gt_sem_seg.data.unique().tolist())
        self._dump(runner)

    def before_val_epoch(self, runner) -> None:
        self._intersection = np.zeros(self.num_classes)
        self._union = np.zeros(self.num_classes)

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        """Accumulate per-class intersection and union over the labelled pixels."""
        for sample in outputs:
            pred = sample.pred_sem_seg.data.squeeze(0).cpu().numpy().ravel()
            label = sample.gt_sem_seg.data.squeeze(0).cpu().numpy().ravel()
            keep = label != self.ignore_index
            pred, label = pred[keep], label[keep]
            bins = np.arange(self.num_classes + 1)
            hit = np.histogram(pred[pred == label], bins)[0]
            self._intersection += hit
            self._union += np.histogram(pred, bins)[0] + np.histogram(label, bins)[0] - hit

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.record['val_metrics'].append({k: float(v) for k, v in (metrics or {}).items()})
        with np.errstate(invalid='ignore', divide='ignore'):
            iou = self._intersection / self._union  # NaN for classes absent on both sides
        self.record['probe_miou'].append(float(np.nanmean(iou) * 100))
        self._dump(runner)

    def after_train(self, runner) -> None:
        self._save_backbone(runner, 'backbone_after_train.pth')
