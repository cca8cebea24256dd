"""LoadImageFromFileOrSkip: truncated and non-image files cost a warning, not the run."""

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.logging import MMLogger
from mmpretrain.datasets import CustomDataset
from skimage import data as skdata
from torch.utils.data import DataLoader

import mmpretrain_ebm  # noqa: F401  (registers the transform)
from mmpretrain_ebm.datasets import LoadImageFromFileOrSkip, UnreadableImagesError


def make_folder(root: Path, good: int) -> dict:
    """``good`` real 32-px photo crops, a truncated PNG, a text file named .png, an empty .jpg."""
    root.mkdir(parents=True, exist_ok=True)
    photo = skdata.astronaut()
    paths = []
    for index in range(max(good, 1)):
        path = root / f'crop_{index:02d}.png'
        crop = photo[40 * index : 40 * index + 32, 100:132]
        cv2.imwrite(str(path), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        paths.append(path)
    truncated = root / 'truncated.png'
    truncated.write_bytes(paths[0].read_bytes()[:200])  # header and part of the data
    text = root / 'notes.png'
    text.write_text('this is not an image\n')
    empty = root / 'empty.jpg'
    empty.write_bytes(b'')
    good_paths = [str(p) for p in paths[:good]]
    for path in paths[good:]:
        path.unlink()  # good=0: only the truncated copy of one was wanted
    return dict(good=good_paths, bad={str(truncated), str(text), str(empty)})


class Records(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture()
def warnings_log():
    logger = MMLogger.get_current_instance()
    handler = Records()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def dataset(root: Path, **kwargs) -> CustomDataset:
    return CustomDataset(
        data_root=str(root),
        with_label=False,
        pipeline=[dict(type='LoadImageFromFileOrSkip', **kwargs)],
    )


def test_bad_files_are_replaced_and_logged_once_each(tmp_path, warnings_log):
    files = make_folder(tmp_path, good=12)
    data = dataset(tmp_path, max_bad_share=0.5, min_loads=5)
    assert len(data) == 15  # CustomDataset lists the bad files too (by extension)
    loader = data.pipeline.transforms[0]
    assert isinstance(loader, LoadImageFromFileOrSkip)
    for _ in range(3):  # every index three times: the bad ones fail again, logged once
        for index in range(len(data)):
            sample = data[index]
            assert sample['img_path'] in files['good']
            assert sample['img'].shape == (32, 32, 3) and sample['img'].dtype == np.uint8
    assert loader.bad_paths == files['bad']
    assert loader.failures >= 9 and loader.loads == 45 + loader.failures  # 45 successes
    skipped = [m for m in warnings_log if m.startswith('skipping unreadable image')]
    assert len(skipped) == 3
    for path in files['bad']:
        assert sum(path in m for m in skipped) == 1
    assert all('loads failed in this process' in m for m in skipped)


def test_too_many_failures_stop_with_a_clear_error(tmp_path):
    files = make_folder(tmp_path, good=0)  # a folder of nothing readable
    data = dataset(tmp_path, max_bad_share=0.1, min_loads=10)
    with pytest.raises(UnreadableImagesError, match=r'10 of 10 image loads failed') as error:
        data[0]
    assert 'max_bad_share=0.1' in str(error.value)
    assert any(path in str(error.value) for path in files['bad'])


def test_share_is_judged_only_after_min_loads(tmp_path):
    make_folder(tmp_path, good=4)
    data = dataset(tmp_path, max_bad_share=0.0, min_loads=1000)
    for index in range(len(data)):
        data[index]  # 3 of 7 files bad: tolerated until 1000 loads
    strict = dataset(tmp_path, max_bad_share=0.0, min_loads=1)
    with pytest.raises(UnreadableImagesError):
        for index in range(len(strict)):
            strict[index]


def test_with_dataloader_workers(tmp_path):
    files = make_folder(tmp_path / 'images', good=12)
    log_file = tmp_path / 'workers.log'
    # the current logger, as a runner's: forked workers write through its file handler
    MMLogger.get_instance(f'workers-{tmp_path.name}', log_file=str(log_file), log_level='INFO')
    data = dataset(tmp_path / 'images', max_bad_share=0.5, min_loads=5)
    loader = DataLoader(data, batch_size=5, num_workers=2, collate_fn=list)
    samples = [s for batch in loader for s in batch]
    assert len(samples) == 15
    assert all(s['img_path'] in files['good'] for s in samples)
    text = log_file.read_text()
    for path in files['bad']:  # once per worker process at most
        assert 1 <= text.count(f'skipping unreadable image {path} ') <= 2

    bad = tmp_path / 'all_bad'
    bad.mkdir()
    for index in range(4):
        (bad / f'{index}.png').write_bytes(b'not a png')
    loader = DataLoader(dataset(bad, min_loads=5), batch_size=2, num_workers=2, collate_fn=list)
    with pytest.raises(UnreadableImagesError, match='image loads failed'):
        list(loader)


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(max_bad_share=1.0), 'max_bad_share'),
        (dict(max_bad_share=-0.1), 'max_bad_share'),
        (dict(max_bad_share='0.1'), 'max_bad_share'),
        (dict(min_loads=0), 'min_loads'),
        (dict(min_loads=2.5), 'min_loads'),
        (dict(ignore_empty=True), 'ignore_empty'),
    ],
)
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LoadImageFromFileOrSkip(**kwargs)


def test_good_images_load_as_mmcv_does(tmp_path):
    files = make_folder(tmp_path, good=2)
    from mmcv.transforms import LoadImageFromFile

    ours = LoadImageFromFileOrSkip()(dict(img_path=files['good'][0]))
    theirs = LoadImageFromFile()(dict(img_path=files['good'][0]))
    assert np.array_equal(ours['img'], theirs['img'])
    assert ours['img_shape'] == theirs['img_shape'] == (32, 32)
