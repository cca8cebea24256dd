"""tools/train.py and tools/test.py: the config they hand to the runner.

``--cfg-options`` are merged before the dataloader rules and checks that depend on them;
every merged dataloader is then built and read with mmengine's ``Runner.build_dataloader``.
"""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

REPO = Path(__file__).resolve().parents[2]
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')

LOADER = """dict(batch_size=2, num_workers={workers}, persistent_workers=True,
         sampler=dict(type='DefaultSampler', shuffle=False),
         dataset=dict(type='CustomDataset', data_root='{data_root}', with_label=False,
                      pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')]))"""


def load_tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f'{name}_tool', REPO / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_tool = load_tool('train')
test_tool = load_tool('test')


@pytest.fixture(autouse=True)
def restore_local_rank(monkeypatch):
    """parse_args sets LOCAL_RANK; monkeypatch puts the environment back afterwards."""
    monkeypatch.delenv('LOCAL_RANK', raising=False)


def write_config(tmp_path: Path, data_root: Path, loaders=LOADERS, workers: int = 2) -> str:
    lines = ["default_scope = 'mmpretrain'"]
    lines += [
        f'{field} = ' + LOADER.format(workers=workers, data_root=data_root) for field in loaders
    ]
    path = tmp_path / 'cfg.py'
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def first_batch(loader_cfg) -> dict:
    """Build the dataloader as the runner does and read one batch."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        loader = Runner.build_dataloader(loader_cfg.to_dict())
    return next(iter(loader))


def train_config(argv: list):
    args = train_tool.parse_args(argv)
    return train_tool.merge_args(train_tool.Config.fromfile(args.config), args)


def test_train_cfg_options_num_workers_0_turn_persistent_workers_off(tmp_path, photo_crops_dir):
    config = write_config(tmp_path, photo_crops_dir, workers=2)
    options = [f'{field}.num_workers=0' for field in LOADERS]
    cfg = train_config([config, '--cfg-options', *options])
    for field in LOADERS:
        assert cfg[field].num_workers == 0 and cfg[field].persistent_workers is False, field
        batch = first_batch(cfg[field])
        assert batch['inputs'][0].shape == (3, 64, 64)
        assert batch['inputs'][0].dtype == torch.uint8


def test_train_cfg_options_num_workers_keep_the_defaults(tmp_path, photo_crops_dir):
    """The other direction: a config with num_workers=0, raised by --cfg-options."""
    config = write_config(tmp_path, photo_crops_dir, workers=0)
    cfg = train_config([config, '--cfg-options', 'train_dataloader.num_workers=1'])
    assert cfg.train_dataloader.persistent_workers is True
    assert cfg.val_dataloader.persistent_workers is False
    cfg = train_config(
        [config, '--no-persistent-workers', '--cfg-options', 'train_dataloader.num_workers=1']
    )
    assert cfg.train_dataloader.persistent_workers is False


def test_test_cfg_options_num_workers_0_turn_persistent_workers_off(tmp_path, photo_crops_dir):
    config = write_config(tmp_path, photo_crops_dir, workers=2)
    args = test_tool.parse_args(
        [config, 'ckpt.pth', '--cfg-options', 'test_dataloader.num_workers=0']
    )
    cfg = test_tool.build_config(args)
    assert cfg.test_dataloader.persistent_workers is False and cfg.load_from == 'ckpt.pth'
    assert first_batch(cfg.test_dataloader)['inputs'][0].shape == (3, 64, 64)


def test_test_checks_test_dataloader_after_cfg_options(tmp_path, photo_crops_dir):
    config = write_config(tmp_path, photo_crops_dir, loaders=('train_dataloader',))
    with pytest.raises(SystemExit, match='defines no test_dataloader'):
        test_tool.build_config(test_tool.parse_args([config, 'ckpt.pth']))
    # a test_dataloader given entirely on the command line
    options = [
        'test_dataloader.batch_size=2',
        'test_dataloader.num_workers=0',
        'test_dataloader.sampler.type=DefaultSampler',
        'test_dataloader.dataset.type=CustomDataset',
        f'test_dataloader.dataset.data_root={photo_crops_dir}',
        'test_dataloader.dataset.with_label=False',
    ]
    cfg = test_tool.build_config(
        test_tool.parse_args([config, 'ckpt.pth', '--cfg-options', *options])
    )
    assert len(first_batch(cfg.test_dataloader)['img_path']) == 2
    # and one removed there
    config = write_config(tmp_path, photo_crops_dir)
    with pytest.raises(SystemExit, match='defines no test_dataloader'):
        test_tool.build_config(
            test_tool.parse_args([config, 'ckpt.pth', '--cfg-options', 'test_dataloader=None'])
        )
