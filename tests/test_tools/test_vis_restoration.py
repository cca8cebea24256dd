"""tools/visualization/vis_restoration.py: config + checkpoint + images -> one figure per
corruption."""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmpretrain_ebm  # noqa: F401  (registers the algorithm and the corruptions)
from mmpretrain.registry import MODELS

ROOT = Path(__file__).parents[2]
TOOL = ROOT / 'tools' / 'visualization' / 'vis_restoration.py'
DEMO = ROOT / 'configs' / 'ebm' / 'ebm_vit-mini-p8_1xb16-mixed-coslr-400i_skimage-64px.py'
CORRUPTIONS = ('random_box_mask', 'super_resolution', 'denoising', 'colorization')


@pytest.fixture(scope='module')
def config_and_checkpoint(tmp_path_factory):
    """The demo config shrunk to a 1-layer ViT, and a checkpoint of its model in the
    runner's format (weights under ``state_dict``, plus ``meta``)."""
    folder = tmp_path_factory.mktemp('vis_tool')
    cfg = Config.fromfile(str(DEMO))
    cfg.model.backbone.arch = dict(embed_dims=32, num_layers=1, num_heads=2,
                                   feedforward_channels=64)
    cfg.model.head.in_channels = 32
    cfg.model.alpha = 50.0
    config = folder / 'tiny_demo.py'
    cfg.dump(str(config))
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
    model.init_weights()
    checkpoint = folder / 'iter_1.pth'
    torch.save(dict(meta=dict(iter=1), state_dict=model.state_dict()), checkpoint)
    return config, checkpoint


def run_tool(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_folder_gives_one_figure_per_corruption(config_and_checkpoint, photo_crops_dir,
                                                tmp_path):
    config, checkpoint = config_and_checkpoint
    result = run_tool(config, checkpoint, photo_crops_dir, '--out-dir', tmp_path,
                      '--max-images', 3)
    assert result.returncode == 0, result.stderr
    figures = sorted(p.stem for p in tmp_path.glob('*.png'))
    assert figures == sorted(CORRUPTIONS)
    for name in CORRUPTIONS:
        assert f'{name}.png: 3 images, PSNR' in result.stdout
    one_row = cv2.imread(str(tmp_path / 'colorization.png'))
    assert one_row.shape[0] > one_row.shape[1] * 0.5  # 3 rows of 4 columns


def test_files_and_a_subset_of_corruptions(config_and_checkpoint, photo_crops_dir, tmp_path):
    config, checkpoint = config_and_checkpoint
    files = sorted(photo_crops_dir.glob('*.png'))[:2]
    result = run_tool(config, checkpoint, *files, '--out-dir', tmp_path,
                      '--corruption-index', 3, '--img-size', 32)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.glob('*.png')] == ['colorization.png']
    assert 'colorization.png: 2 images' in result.stdout


@pytest.fixture(scope='module')
def tool():
    """The tool's module, for its argument checks (in-process: no start-up cost)."""
    spec = importlib.util.spec_from_file_location('vis_restoration', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bad_arguments_are_named(tool, photo_crops_dir, tmp_path):
    corruptions = [dict(type='RandomBoxMaskCorruption'), dict(type='DenoisingCorruption')]
    with pytest.raises(ValueError, match=re.escape(
            "--corruption-index [7] out of range; the config has "
            "['0: RandomBoxMaskCorruption', '1: DenoisingCorruption']")):
        tool.select(corruptions, [1, 7])
    assert tool.select(corruptions, [1]) == corruptions[1:]
    with pytest.raises(ValueError, match='--max-images must be >= 1, got 0'):
        tool.collect_images([str(photo_crops_dir)], 0)
    with pytest.raises(FileNotFoundError, match='nowhere.png is neither an image file nor'):
        tool.collect_images([str(tmp_path / 'nowhere.png')], 8)
    with pytest.raises(FileNotFoundError, match='no images'):
        tool.collect_images([str(tmp_path)], 8)
    assert len(tool.collect_images([str(photo_crops_dir)], 5)) == 5
