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
from mmpretrain_ebm.datasets.loading import share_exceeds


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


def tiny_folder(root: Path, good: int, bad: int) -> Path:
    """``good`` real 8-px photo crops and ``bad`` text files named .png."""
    root.mkdir(parents=True)
    photo = skdata.astronaut()
    for index in range(good):
        crop = photo[8 * index : 8 * index + 8, 200:208]
        cv2.imwrite(str(root / f'good_{index:03d}.png'), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    for index in range(bad):
        (root / f'bad_{index:03d}.png').write_text('not an image')
    return root


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
    data = dataset(tmp_path, max_bad_share=0.5)
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


def test_a_wrong_folder_stops_after_8_loads_with_a_clear_error(tmp_path):
    files = make_folder(tmp_path, good=0)  # a folder of nothing readable
    data = dataset(tmp_path, max_bad_share=0.1)
    # 8 failures of 8: 8 ln(1 / 0.1) = 18.4 >= ln(8 * 9 / 1e-6) = 18.1 (7 of 7: 16.1 < 17.8)
    with pytest.raises(UnreadableImagesError, match=r'8 of 8 image loads failed') as error:
        data[0]
    assert 'max_bad_share=0.1' in str(error.value)
    assert any(path in str(error.value) for path in files['bad'])


def test_no_tolerance_stops_at_the_first_failure(tmp_path):
    make_folder(tmp_path, good=4)
    tolerant = dataset(tmp_path, max_bad_share=0.5)
    for _ in range(20):
        for index in range(len(tolerant)):
            tolerant[index]  # 3 of 7 files bad: below 50 %
    strict = dataset(tmp_path, max_bad_share=0.0)
    with pytest.raises(UnreadableImagesError, match=r'^1 of \d+ image loads failed'):
        for index in range(len(strict)):
            strict[index]


def bernoulli_streams(share: float, streams: int, loads: int, seed: int) -> np.ndarray:
    """Failure counts after each load [streams, loads] of loads failing with prob ``share``."""
    failed = np.random.default_rng(seed).random((streams, loads)) < share
    return failed.cumsum(axis=1)


def first_stops(counts: np.ndarray, max_bad_share: float = 0.1) -> list:
    """The load (1-based) at which :func:`share_exceeds` first stops each stream, or None."""
    stops = []
    for row in counts.tolist():
        hits = (
            n
            for n, failures in enumerate(row, 1)
            if share_exceeds(failures, n, max_bad_share, false_stop_prob=1e-6)
        )
        stops.append(next(hits, None))
    return stops


def test_the_stop_rule_ignores_noise_at_5_percent_and_stops_50_percent_early():
    healthy = bernoulli_streams(0.05, streams=2000, loads=1000, seed=0)
    assert first_stops(healthy) == [None] * 2000
    # the rule this replaced (share > 10 % at any load from 50 on) stopped ~10 % of these
    loads = np.arange(1, 1001)
    old_rule = ((loads >= 50) & (healthy > 0.1 * loads)).any(axis=1)
    assert 0.05 < old_rule.mean() < 0.15
    # at exactly the limit too (the bound allows 1e-6 per stream)
    assert first_stops(bernoulli_streams(0.1, streams=1000, loads=1000, seed=1)) == [None] * 1000

    wrong = first_stops(bernoulli_streams(0.5, streams=1000, loads=1000, seed=2))
    assert None not in wrong and max(wrong) <= 150 and np.median(wrong) <= 50
    assert first_stops(bernoulli_streams(1.0, streams=1, loads=100, seed=3)) == [8]
    twice = first_stops(bernoulli_streams(0.2, streams=200, loads=5000, seed=4))
    assert None not in twice and np.median(twice) <= 1000


def load_stream(loader: LoadImageFromFileOrSkip, good: str, bad: str, share: float, seed: int):
    """Load ``bad`` with probability ``share``, else ``good``, 1000 times or until stopped;
    returns the number of loads, and whether they stopped."""
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        try:
            loader(dict(img_path=bad if rng.random() < share else good))
        except UnreadableImagesError:
            return loader.loads, True
    return loader.loads, False


def test_real_loads_at_5_percent_bad_go_on_and_at_50_percent_stop(tmp_path):
    files = make_folder(tmp_path, good=1)
    good, bad = files['good'][0], sorted(files['bad'])[0]
    for seed in range(64):  # an 8-GPU run with 8 workers each: 64 streams of 1000 loads
        assert load_stream(LoadImageFromFileOrSkip(), good, bad, 0.05, seed) == (1000, False)
    for seed in range(16):
        loads, stopped = load_stream(LoadImageFromFileOrSkip(), good, bad, 0.5, seed)
        assert stopped and loads <= 150


def test_with_dataloader_workers(tmp_path):
    files = make_folder(tmp_path / 'images', good=12)
    log_file = tmp_path / 'workers.log'
    # the current logger, as a runner's: forked workers write through its file handler
    MMLogger.get_instance(f'workers-{tmp_path.name}', log_file=str(log_file), log_level='INFO')
    data = dataset(tmp_path / 'images', max_bad_share=0.5)
    loader = DataLoader(data, batch_size=5, num_workers=2, collate_fn=list)
    samples = [s for batch in loader for s in batch]
    assert len(samples) == 15
    assert all(s['img_path'] in files['good'] for s in samples)
    text = log_file.read_text()
    for path in files['bad']:  # once per worker process at most
        assert 1 <= text.count(f'skipping unreadable image {path} ') <= 2

    # 2 bad files of 40 (5 %), the configs' max_bad_share 10 %: 20 epochs go through
    data = dataset(tiny_folder(tmp_path / 'healthy', good=38, bad=2), max_bad_share=0.1)
    loader = DataLoader(
        data, batch_size=4, shuffle=True, num_workers=2, persistent_workers=True, collate_fn=list
    )
    for _ in range(20):
        assert sum(len(batch) for batch in loader) == 40

    # half of the files unreadable: a worker stops the run within a few epochs
    data = dataset(tiny_folder(tmp_path / 'half_bad', good=20, bad=20))
    loader = DataLoader(
        data, batch_size=4, shuffle=True, num_workers=2, persistent_workers=True, collate_fn=list
    )
    with pytest.raises(UnreadableImagesError, match='image loads failed in this process'):
        for _ in range(20):
            list(loader)


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(max_bad_share=1.0), 'max_bad_share'),
        (dict(max_bad_share=-0.1), 'max_bad_share'),
        (dict(max_bad_share='0.1'), 'max_bad_share'),
        (dict(false_stop_prob=0.0), 'false_stop_prob'),
        (dict(false_stop_prob=1.0), 'false_stop_prob'),
        (dict(false_stop_prob='1e-6'), 'false_stop_prob'),
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
