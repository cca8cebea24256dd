"""ADE20K transfer end to end: our pretraining -> ebm2mmseg -> mmseg's tools/train.py.

Each stage runs its real command line in a subprocess, as docs/ade20k.md tells users to:

1. ``tools/train.py`` pretrains a 12-layer, 32-channel ViT with EnergyRestorationAlgorithm
   for 3 iterations on photo crops;
2. ``tools/model_converters/ebm2mmseg.py`` converts its checkpoint for the UperNet config;
3. mmseg's own ``tools/train.py`` trains UperNet for 4 iterations on a tiny dataset in
   ADE20K's layout and evaluates mIoU; a probe hook (transfer_probe.py) saves the backbone
   before and after training and recomputes the mIoU from the predictions.

A last test resumes that run with mmseg's ``--resume`` (its checkpoints hold mmengine's
HistoryBuffer, which torch's ``weights_only=True`` loading refuses unless our config imports
mmpretrain_ebm).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ade20k_layout import REDUCED_LABELS

import mmpretrain_ebm  # noqa: F401  (allow-lists the types runner checkpoints hold)
from mmpretrain_ebm.utils.requirements import SEG_MISSING

mmseg = pytest.importorskip('mmseg', reason=SEG_MISSING)

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PRETRAIN_CONFIG = HERE / 'configs' / 'ebm_vit-tiny-p16_1xb4-denoise-3i_photos-64px.py'
SEG_CONFIG = HERE / 'configs' / 'upernet_vit-tiny-p16_1xb2-4i_ade20k-64x64.py'
MMSEG_TRAIN = Path(mmseg.__file__).parent / '.mim' / 'tools' / 'train.py'


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    """Run a command line from the repository root; fail with its output if it fails."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )
    assert result.returncode == 0, (
        f'{" ".join(map(str, command))} exited with {result.returncode}\n'
        f'--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}'
    )
    return result


@pytest.fixture(scope='module')
def transfer(tmp_path_factory, photo_crops_dir, tiny_ade20k_root) -> dict:
    """Pretrain, convert and fine-tune once; return the paths the tests read."""
    work = tmp_path_factory.mktemp('ade20k_transfer')
    run(
        [
            sys.executable,
            'tools/train.py',
            PRETRAIN_CONFIG,
            '--work-dir',
            work / 'pretrain',
            '--cfg-options',
            f'train_dataloader.dataset.data_root={photo_crops_dir}',
        ]
    )
    pretrained = work / 'pretrain' / 'iter_3.pth'
    converted = work / 'ebm_vit-tiny-p16_mmseg.pth'
    # the UperNet config imports the probe hook (transfer_probe.py) from this folder
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), os.environ.get('PYTHONPATH')])),
    )
    conversion = run(
        [sys.executable, 'tools/model_converters/ebm2mmseg.py', SEG_CONFIG, pretrained, converted],
        env=env,
    )
    seg_options = [
        f'model.backbone.init_cfg.checkpoint={converted}',
        *(
            f'{loader}.dataset.data_root={tiny_ade20k_root}'
            for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
        ),
    ]
    run(
        [
            sys.executable,
            MMSEG_TRAIN,
            SEG_CONFIG,
            '--work-dir',
            work / 'upernet',
            '--cfg-options',
            *seg_options,
        ],
        env=env,
    )
    return dict(
        pretrained=pretrained,
        converted=converted,
        conversion=conversion.stdout,
        upernet=work / 'upernet',
        seg_options=seg_options,
        env=env,
    )


def load_weights(path: Path) -> dict:
    return torch.load(path, map_location='cpu', weights_only=True)


def test_converter_reports_what_it_did(transfer):
    assert '[4/4] writing' in transfer['conversion']
    assert 'no missing or unexpected keys' in transfer['conversion']
    converted = load_weights(transfer['converted'])
    assert converted['meta']['dropped_pooled_feature_norm'] == ['ln2.weight', 'ln2.bias']
    assert converted['meta']['added_at_initialization'] == []
    assert converted['meta']['source_iter'] == 3


def test_backbone_starts_from_the_pretrained_weights(transfer):
    pretrained = load_weights(transfer['pretrained'])['state_dict']
    pretrained_backbone = {
        key[len('backbone.') :]: value
        for key, value in pretrained.items()
        if key.startswith('backbone.')
    }
    before = load_weights(transfer['upernet'] / 'backbone_before_train.pth')
    # every backbone tensor comes from pretraining; only the pooled-token norm is left out
    assert set(pretrained_backbone) - set(before) == {'ln2.weight', 'ln2.bias'}
    assert set(before) <= set(pretrained_backbone)
    for key, value in before.items():
        assert torch.equal(value, pretrained_backbone[key]), key


def test_upernet_trains_the_backbone(transfer):
    before = load_weights(transfer['upernet'] / 'backbone_before_train.pth')
    after = load_weights(transfer['upernet'] / 'backbone_after_train.pth')
    changed = [key for key in before if not torch.equal(before[key], after[key])]
    assert 'layers.11.ffn.layers.1.weight' in changed
    assert 'patch_embed.projection.weight' in changed  # the smallest lr of the layer decay


def test_evaluates_miou_on_ade20k_labels(transfer):
    probe = json.loads((transfer['upernet'] / 'probe.json').read_text())
    # reduce_zero_label: raw 0 ("other") is ignored (255), classes k become k - 1
    assert tuple(probe['val_gt_labels']) == REDUCED_LABELS
    assert len(probe['val_metrics']) == len(probe['probe_miou']) == 1
    miou = probe['val_metrics'][0]['mIoU']
    # mmseg's IoUMetric (rounded to 0.01 %) agrees with the probe's own count, and the
    # trained heads already find some of the 3 labelled classes
    assert miou == pytest.approx(probe['probe_miou'][0], abs=0.006)
    assert 0.0 < miou <= 100.0


def test_resumes_under_weights_only_loading(transfer, tmp_path):
    work = tmp_path / 'upernet'
    shutil.copytree(transfer['upernet'], work)
    result = run(
        [
            sys.executable,
            MMSEG_TRAIN,
            SEG_CONFIG,
            '--work-dir',
            work,
            '--resume',
            '--cfg-options',
            *transfer['seg_options'],
            'train_cfg.max_iters=6',
        ],
        env=transfer['env'],
    )
    assert 'resumed epoch: 0, iter: 4' in result.stdout + result.stderr
    assert (work / 'iter_6.pth').is_file()
    # training went on from iteration 4's weights, not from the pretrained ones again
    resumed = load_weights(work / 'backbone_before_train.pth')
    trained = load_weights(transfer['upernet'] / 'backbone_after_train.pth')
    assert all(torch.equal(resumed[key], trained[key]) for key in trained)
