"""tools/visualization/vis_restoration.py: config + checkpoint + images -> one figure per
corruption."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS

import mmpretrain_ebm  # noqa: F401  (registers the algorithm and the corruptions)
from mmpretrain_ebm.visualization import (
    draw_restoration_chains,
    find_corruptions,
    restoration_chains,
    step_alignment,
)

ROOT = Path(__file__).parents[2]
TOOL = ROOT / 'tools' / 'visualization' / 'vis_restoration.py'
DEMO = ROOT / 'configs' / 'ebm' / 'ebm_vit-mini-p8_1xb16-mixed-coslr-400i_skimage-64px.py'
CORRUPTIONS = ('grid_mask', 'super_resolution', 'denoising', 'colorization')


@pytest.fixture(scope='module')
def config_and_checkpoint(tmp_path_factory):
    """The demo config shrunk to a 1-layer ViT, and a checkpoint of its model in the
    runner's format (weights under ``state_dict``, plus ``meta``). The checkpoint's alpha
    (200) differs from the config's (50): only a loaded model restores like it."""
    folder = tmp_path_factory.mktemp('vis_tool')
    cfg = Config.fromfile(str(DEMO))
    cfg.model.backbone.arch = dict(
        embed_dims=32, num_layers=1, num_heads=2, feedforward_channels=64
    )
    cfg.model.head.in_channels = 32
    cfg.model.alpha = 50.0
    config = folder / 'tiny_demo.py'
    cfg.dump(str(config))
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
    model.init_weights()
    state_dict = model.state_dict()
    state_dict['alpha'] = torch.tensor(200.0)
    checkpoint = folder / 'iter_1.pth'
    torch.save(dict(meta=dict(iter=1), state_dict=state_dict), checkpoint)
    return config, checkpoint


def run_tool(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def printed_psnr(stdout: str) -> Dict[str, Tuple[float, float]]:
    """{corruption: (mean PSNR corrupted, mean PSNR after the last step)} as printed."""
    lines = re.findall(r'(\w+)\.png: \d+ images, PSNR (\S+) dB corrupted -> (\S+) dB', stdout)
    return {name: (float(first), float(last)) for name, first, last in lines}


def expected_chains(
    config: Path, checkpoint: Path, images: List[Path], img_size: int, seed: int, indices: List[int]
) -> list:
    """The chains computed in-process with the model loaded from ``checkpoint``."""
    cfg = Config.fromfile(str(config))
    init_default_scope('mmpretrain')
    model = MODELS.build(dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
    load_checkpoint(model, str(checkpoint), map_location='cpu', strict=True)
    corruptions = find_corruptions(cfg.train_dataloader.dataset.pipeline)
    return restoration_chains(
        model.eval(), [str(p) for p in images], [corruptions[i] for i in indices], img_size, seed
    )


def mean_psnr(chain) -> Tuple[float, float]:
    """The chain's mean PSNR of the corrupted images and after the last step."""
    return chain.psnr[:, 0].mean(), chain.psnr[:, -1].mean()


def assert_tool_drew(out_dir: Path, stdout: str, chains: list, checkpoint: Path) -> None:
    """The printed mean PSNRs and the written figures are those of ``chains``."""
    assert sorted(p.stem for p in out_dir.glob('*.png')) == sorted(c.corruption for c in chains)
    printed = printed_psnr(stdout)
    cosines = [float(c) for c in re.findall(r'step \d+: cos\(step, clean - input\) (\S+),', stdout)]
    assert len(cosines) == sum(chain.num_steps for chain in chains)
    expected_cosines = [
        step_alignment(c, n)['cos'] for c in chains for n in range(1, c.num_steps + 1)
    ]
    np.testing.assert_allclose(cosines, expected_cosines, atol=6e-4)  # printed with 3 decimals
    for chain in chains:
        np.testing.assert_allclose(printed[chain.corruption], mean_psnr(chain), atol=0.011)
        figure = draw_restoration_chains([chain], title=f'{chain.corruption} - {checkpoint.name}')
        written = cv2.cvtColor(
            cv2.imread(str(out_dir / f'{chain.corruption}.png')), cv2.COLOR_BGR2RGB
        )
        assert written.shape == figure.shape  # one row per image, exactly
        assert np.abs(written.astype(float) - figure).mean() < 1.0  # RGB, same pixels


def test_folder_gives_one_figure_per_corruption(config_and_checkpoint, photo_crops_dir, tmp_path):
    config, checkpoint = config_and_checkpoint
    result = run_tool(config, checkpoint, photo_crops_dir, '--out-dir', tmp_path, '--max-images', 3)
    assert result.returncode == 0, result.stderr
    for name in CORRUPTIONS:
        assert f'{name}.png: 3 images, PSNR' in result.stdout
    images = sorted(photo_crops_dir.glob('*.png'))[:3]
    chains = expected_chains(config, checkpoint, images, 64, 0, [0, 1, 2, 3])
    assert [chain.images.shape[0] for chain in chains] == [3] * 4
    assert_tool_drew(tmp_path, result.stdout, chains, checkpoint)
    # a model left at its config's alpha (checkpoint not loaded) restores differently
    unloaded = Path(str(checkpoint).replace('.pth', '_alpha50.pth'))
    state = torch.load(checkpoint)
    state['state_dict']['alpha'] = torch.tensor(50.0)
    torch.save(state, unloaded)
    other = expected_chains(config, unloaded, images, 64, 0, [3])[0]
    assert abs(mean_psnr(other)[1] - mean_psnr(chains[3])[1]) > 0.1


def test_combined_draws_every_corruption_in_one_figure(
    config_and_checkpoint, photo_crops_dir, tmp_path
):
    """--combined: one figure of every corruption, as the training hook draws it (gains
    beside the names, a title line naming what gained under 1 dB), and the same numbers."""
    config, checkpoint = config_and_checkpoint
    files = sorted(photo_crops_dir.glob('*.png'))[:2]
    result = run_tool(config, checkpoint, *files, '--out-dir', tmp_path, '--combined')
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.glob('*.png')] == ['restorations.png']
    chains = expected_chains(config, checkpoint, files, 64, 0, [0, 1, 2, 3])
    for chain in chains:
        line = re.search(
            rf'restorations\.png \({chain.corruption}\): 2 images, PSNR (\S+) dB corrupted '
            r'-> (\S+) dB',
            result.stdout,
        )
        np.testing.assert_allclose([float(line[1]), float(line[2])], mean_psnr(chain), atol=0.011)
    figure = draw_restoration_chains(chains, title=checkpoint.name, min_gain=1.0)
    written = cv2.cvtColor(cv2.imread(str(tmp_path / 'restorations.png')), cv2.COLOR_BGR2RGB)
    assert written.shape == figure.shape
    assert np.abs(written.astype(float) - figure).mean() < 1.0


def test_files_a_subset_of_corruptions_size_and_seed(
    config_and_checkpoint, photo_crops_dir, tmp_path
):
    config, checkpoint = config_and_checkpoint
    files = sorted(photo_crops_dir.glob('*.png'))[:2]
    result = run_tool(
        config,
        checkpoint,
        *files,
        '--out-dir',
        tmp_path,
        '--corruption-index',
        0,
        3,
        '--img-size',
        32,
        '--seed',
        5,
    )
    assert result.returncode == 0, result.stderr
    assert 'colorization.png: 2 images' in result.stdout
    chains = expected_chains(config, checkpoint, files, 32, 5, [0, 3])
    assert_tool_drew(tmp_path, result.stdout, chains, checkpoint)
    # the size and the seed matter: the defaults (64 px, seed 0) give other printed values
    for img_size, seed in ((64, 5), (32, 0)):
        other = expected_chains(config, checkpoint, files, img_size, seed, [0, 3])
        gaps = [np.subtract(mean_psnr(a), mean_psnr(b)) for a, b in zip(chains, other)]
        assert np.abs(gaps).max() > 0.05, (img_size, seed)


def test_existing_figures_are_kept_unless_overwrite(
    config_and_checkpoint, photo_crops_dir, tmp_path
):
    config, checkpoint = config_and_checkpoint
    mine = tmp_path / 'colorization.png'
    cv2.imwrite(str(mine), np.zeros((4, 4, 3), np.uint8))
    args = (
        config,
        checkpoint,
        photo_crops_dir,
        '--out-dir',
        tmp_path,
        '--max-images',
        1,
        '--corruption-index',
        2,
        3,
    )
    result = run_tool(*args)
    assert result.returncode != 0
    assert f"['{mine}'] exist; pass --overwrite" in result.stderr
    assert cv2.imread(str(mine)).shape == (4, 4, 3)
    assert not (tmp_path / 'denoising.png').exists()  # nothing written
    result = run_tool(*args, '--overwrite')
    assert result.returncode == 0, result.stderr
    assert cv2.imread(str(mine)).shape[0] > 4


@pytest.fixture(scope='module')
def tool():
    """The tool's module, for its argument checks (in-process: no start-up cost)."""
    spec = importlib.util.spec_from_file_location('vis_restoration', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bad_arguments_are_named(tool, photo_crops_dir, tmp_path):
    corruptions = [dict(type='RandomBoxMaskCorruption'), dict(type='DenoisingCorruption')]
    with pytest.raises(
        ValueError,
        match=re.escape(
            '--corruption-index [7] out of range; the config has '
            "['0: RandomBoxMaskCorruption', '1: DenoisingCorruption']"
        ),
    ):
        tool.select(corruptions, [1, 7])
    assert tool.select(corruptions, [1]) == corruptions[1:]
    with pytest.raises(ValueError, match=re.escape('--corruption-index [1] given more than')):
        tool.select(corruptions, [1, 0, 1])
    for bad in (0, -3):
        with pytest.raises(ValueError, match=f'--img-size must be >= 1 px, got {bad}'):
            tool.check_img_size(bad)
    assert tool.check_img_size(1) == 1
    with pytest.raises(ValueError, match='--max-images must be >= 1, got 0'):
        tool.collect_images([str(photo_crops_dir)], 0)
    with pytest.raises(FileNotFoundError, match='nowhere.png is neither an image file nor'):
        tool.collect_images([str(tmp_path / 'nowhere.png')], 8)
    with pytest.raises(FileNotFoundError, match='no images'):
        tool.collect_images([str(tmp_path)], 8)
    assert len(tool.collect_images([str(photo_crops_dir)], 5)) == 5


def test_files_and_folders_are_sorted_together(tool, photo_crops_dir, tmp_path):
    photo = next(photo_crops_dir.glob('*.png')).read_bytes()
    (tmp_path / 'dir').mkdir()
    for name in ('dir/b.png', 'dir/c.png', 'z.png'):
        (tmp_path / name).write_bytes(photo)
    # a file before the folder, and one of the folder's files again
    given = [str(tmp_path / 'z.png'), str(tmp_path / 'dir' / 'c.png'), str(tmp_path / 'dir')]
    expected = [str(tmp_path / name) for name in ('dir/b.png', 'dir/c.png', 'z.png')]
    assert tool.collect_images(given, 99) == expected
    assert tool.collect_images(given, 2) == expected[:2]
