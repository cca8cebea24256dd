"""The own-folder config: scale-aware alpha, skipping loader, variables that work
when the file is copied and edited as docs/training.md says; the demo's loader."""

import re
from pathlib import Path

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS, MODELS
from skimage import data as skdata

import mmpretrain_ebm  # noqa: F401
from mmpretrain_ebm.datasets.transforms.restoration import SuperResolutionCorruption

CONFIGS = Path(__file__).parents[2] / 'configs'
CUSTOM = CONFIGS / 'ebm' / 'ebm_deit-small-p16_1xb32-mixed-amp-coslr-200e_custom-folder.py'
DEMO = CONFIGS / 'ebm' / 'ebm_vit-mini-p8_1xb16-mixed-coslr-400i_skimage-64px.py'


def edited_copy(tmp_path: Path, **values) -> Config:
    """docs/training.md's recipe: copy the config elsewhere, point ``_base_`` at the original's
    folder, set the variables."""
    text = CUSTOM.read_text()
    text = text.replace("'./ebm_deit", f"'{CUSTOM.parent}/ebm_deit")
    for name, value in values.items():
        text, count = re.subn(rf'^{name} = .*$', f'{name} = {value!r}', text, flags=re.M)
        assert count == 1, name
    path = tmp_path / 'my_config.py'
    path.write_text(text)
    return Config.fromfile(str(path))


def test_custom_folder_config_reads_any_folder_at_its_resolution(tmp_path):
    folder = tmp_path / 'images' / 'nested'
    folder.mkdir(parents=True)
    photo = skdata.coffee()
    for index in range(6):
        cv2.imwrite(str(folder / f'{index}.jpg'), photo[50 * index : 50 * index + 90, :120])
    (folder / 'broken.jpg').write_bytes(b'\xff\xd8\xff truncated')
    cfg = edited_copy(
        tmp_path, data_root=str(tmp_path / 'images'), img_size=64, batch_size=2, sr_scale=4
    )
    assert cfg.train_dataloader.batch_size == 2
    assert [h.type for h in cfg.custom_hooks][0] == 'InitialStepSizeHook'
    dataset_cfg = cfg.train_dataloader.dataset
    assert dataset_cfg.type == 'CustomDataset' and dataset_cfg.with_label is False
    assert dataset_cfg.pipeline[0].type == 'LoadImageFromFileOrSkip'

    init_default_scope('mmpretrain')
    dataset = DATASETS.build(dataset_cfg)
    assert len(dataset) == 7  # found recursively, the broken file included
    torch.manual_seed(0)
    np.random.seed(0)
    for index in range(len(dataset)):
        clean, corrupted = dataset[index]['inputs']
        assert clean.shape == corrupted.shape == (3, 64, 64)
    # sr_scale reaches the mix's super-resolution part: 4-px blocks, not the base's 16
    mixed = next(t for t in dataset.pipeline.transforms if type(t).__name__ == 'MixedCorruption')
    (sr,) = [c for c in mixed.corruptions if isinstance(c, SuperResolutionCorruption)]
    assert sr.scale == 4
    photo = cv2.resize(skdata.coffee(), (64, 64), interpolation=cv2.INTER_AREA)
    low = sr.corrupt(photo)
    assert np.array_equal(low, np.repeat(np.repeat(low[::4, ::4], 4, 0), 4, 1))
    assert len(np.unique(low.reshape(-1, 3), axis=0)) > 16  # 16-px blocks would give 16
    model = MODELS.build(cfg.model)
    assert model.backbone.patch_resolution == (4, 4)
    assert model.energy(torch.rand(2, 3, 64, 64)).shape == (2,)


def test_demo_skips_unreadable_images():
    cfg = Config.fromfile(str(DEMO))
    assert cfg.train_dataloader.dataset.pipeline[0].type == 'LoadImageFromFileOrSkip'
