"""The Python API page's blocks (docs/api.md) run as written, on the demo's data and a
checkpoint of the demo config (random weights: what they show is the API, not a trained model)."""

import importlib.util
import re

import numpy as np
import pytest
import torch
from api_testing import DEMO, ROOT, save_checkpoint
from mmengine.config import Config
from test_model_zoo import metafile_models


def api_page_blocks() -> list:
    """Every ```python block of docs/api.md, in order."""
    page = (ROOT / 'docs' / 'api.md').read_text()
    return re.findall(r'```python\n(.*?)```', page, flags=re.S)


@pytest.fixture
def demo_folder(tmp_path, monkeypatch):
    """A working folder as after `make demo`: configs/, data/demo, work_dirs/demo/iter_400.pth."""
    (tmp_path / 'configs').symlink_to(ROOT / 'configs')
    spec = importlib.util.spec_from_file_location(
        'prepare_demo_data', ROOT / 'tools' / 'dataset_converters' / 'prepare_demo_data.py'
    )
    prepare_demo_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare_demo_data)
    prepare_demo_data.prepare(tmp_path / 'data' / 'demo', crop=96, per_image=1, seed=0)
    (tmp_path / 'work_dirs' / 'demo').mkdir(parents=True)
    state_dict = save_checkpoint(
        Config.fromfile(str(DEMO)), tmp_path / 'work_dirs' / 'demo' / 'iter_400.pth', alpha=8.6
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path, state_dict


def test_the_python_api_blocks_run_as_written(demo_folder):
    folder, state_dict = demo_folder
    blocks = api_page_blocks()
    assert len(blocks) == 5  # list, load, features, restore, figures
    scope = {}
    exec(blocks[0], scope)
    assert set(scope['names']) == set(metafile_models())
    assert len([n for n in scope['names'] if n.startswith('ebm_')]) == 27

    exec(blocks[1], scope)
    model = scope['model']
    assert type(model).__name__ == 'EnergyRestorationAlgorithm'
    assert model.alpha.item() == pytest.approx(8.6)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state_dict.items())

    exec(blocks[2], scope)
    val = sorted((folder / 'data' / 'demo' / 'val').glob('*.png'))
    assert [p.name for p in val] == ['motorcycle_left_000.png', 'motorcycle_right_000.png']
    feats = scope['feats']
    assert len(feats) == 2 and [f.shape for f in feats[0]] == [(96,)]

    exec(blocks[3], scope)
    assert scope['chain'].shape == (3, 64, 64, 3) and scope['chain'].dtype == np.uint8
    assert scope['psnr'].shape == (3,)
    assert scope['result']['clean'].shape == (64, 64, 3)

    exec(blocks[4], scope)
    names = ['grid_mask', 'super_resolution', 'denoising', 'colorization']
    assert len(scope['results']) == 2
    assert list(scope['results'][0]['restorations']) == names
    assert sorted(p.name for p in (folder / 'vis_restoration').glob('*.png')) == sorted(
        f'{name}.png' for name in names
    )
