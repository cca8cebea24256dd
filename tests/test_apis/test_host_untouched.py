"""Importing mmpretrain_ebm extends mmpretrain (its registries, its ModelHub) and patches
nothing: mmpretrain's own functions and models behave exactly as without our import."""

import json
import subprocess
import sys

import cv2
import numpy as np

SCRIPT = r"""
import json, sys
import torch
import mmpretrain
from mmpretrain.apis.model import ModelHub, inference_model as original
from modelindex.models.Model import Model
before = {name: type(info) for name, info in ModelHub._models_dict.items()}
if sys.argv[1] == 'with':
    import mmpretrain_ebm  # noqa: F401
torch.manual_seed(0)
result = mmpretrain.inference_model('resnet18_8xb32_in1k', sys.argv[2], pretrained=False)
hub = ModelHub._models_dict
print('\nRESULT ' + json.dumps(dict(
    scores=result['pred_scores'].tolist(),
    label=int(result['pred_label']),
    inference_model_is_mmpretrains=(
        mmpretrain.inference_model is original and mmpretrain.apis.inference_model is original
    ),
    entry_classes=sorted({f'{type(i).__module__}.{type(i).__name__}' for i in hub.values()}),
    mmpretrains_entries_unchanged=all(type(hub[name]) is cls for name, cls in before.items()),
    models=len(hub),
)))
"""


def run(mode: str, image: str) -> dict:
    result = subprocess.run(
        [sys.executable, '-c', SCRIPT, mode, image],
        capture_output=True,
        text=True,
        env={'OMP_NUM_THREADS': '1', 'PATH': '/usr/bin:/bin'},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith('RESULT ')]
    return json.loads(line[len('RESULT ') :])


def test_mmpretrains_models_behave_as_without_our_import(tmp_path):
    y, x = np.mgrid[0:48, 0:64]
    image = tmp_path / 'gradient.png'
    cv2.imwrite(str(image), np.stack([x * 4, y * 5, (x + y) * 2], -1).astype(np.uint8))
    without, with_ours = run('without', str(image)), run('with', str(image))
    # one of mmpretrain's configs (ResNet-18, seeded random weights): the same scores
    assert with_ours['scores'] == without['scores'] and len(without['scores']) == 1000
    assert with_ours['label'] == without['label']
    # its inference_model is its own, and every ModelHub entry is modelindex's Model
    assert with_ours['inference_model_is_mmpretrains'] and without['inference_model_is_mmpretrains']
    assert (
        with_ours['entry_classes'] == without['entry_classes'] == ['modelindex.models.Model.Model']
    )
    assert with_ours['mmpretrains_entries_unchanged']
    # our model zoo is added to ModelHub (its hook for other model indexes)
    assert with_ours['models'] == without['models'] + 47
