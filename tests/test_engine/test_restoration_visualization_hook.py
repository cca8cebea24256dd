"""The restoration-chain hook in a real (tiny) pretraining run, Local and TensorBoard backends."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from demo_testing import tiny_demo_config
from mmengine.config import Config
from mmengine.runner import Runner

import mmpretrain_ebm  # noqa: F401  (registers the hook, the algorithm, the corruptions)
from mmpretrain_ebm.engine import RestorationVisualizationHook

NUM_CORRUPTIONS = 4  # the demo's mix: boxes, super-resolution, denoising, colorization


def tiny_demo_run_config(data_dir: Path, work_dir: Path, max_iters: int, **hook) -> Config:
    """The tiny demo config with a checkpoint at the end, only ``RestorationVisualizationHook``
    (``hook`` its arguments) and the local and TensorBoard backends."""
    cfg = tiny_demo_config(data_dir, work_dir, max_iters)
    cfg.default_hooks.checkpoint.interval = max_iters
    cfg.custom_hooks = [dict(type='RestorationVisualizationHook', **hook)]
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
    return cfg


def read_scalars(work_dir: Path) -> list:
    files = list(work_dir.glob('*/vis_data/scalars.json'))
    assert len(files) == 1, files
    return [json.loads(line) for line in files[0].read_text().splitlines()]


def test_hook_draws_fixed_batch_chains_psnr_and_curves(photo_crops_dir, tmp_path):
    cfg = tiny_demo_run_config(photo_crops_dir, tmp_path, max_iters=5, interval=2, num_images=2)
    runner = Runner.from_cfg(cfg)
    runner.train()

    # drawings before training, every 2 iterations and after the last one
    images = sorted(p.name for p in tmp_path.glob('*/vis_data/vis_image/restoration_*'))
    assert images == [f'restoration_{step}.png' for step in (0, 2, 4, 5)]
    assert list(tmp_path.glob('*/vis_data/vis_image/training_curves_5.png'))
    final = cv2.imread(str(tmp_path / 'restoration.png'))
    last = cv2.imread(str(next(tmp_path.glob('*/vis_data/vis_image/restoration_5.png'))))
    np.testing.assert_array_equal(final, last)
    assert (tmp_path / 'training_curves.png').is_file()
    # one row per (corruption, image): the figure of 4 x 2 rows is taller than wide
    assert final.shape[0] > 1.5 * final.shape[1]

    scalars = read_scalars(tmp_path)
    psnr_rows = [row for row in scalars if 'restoration/denoising/psnr_step2' in row]
    assert [row['step'] for row in psnr_rows] == [0, 2, 4, 5]
    keys = {key for row in psnr_rows for key in row if key.startswith('restoration/')}
    assert len(keys) == NUM_CORRUPTIONS * 3  # corrupted, step 1, step 2
    # the fixed batch: the corrupted inputs, hence their PSNR, are the same at every drawing
    corrupted = {row['restoration/denoising/psnr_corrupted'] for row in psnr_rows}
    assert len(corrupted) == 1
    # the logger's scalars (curves of alpha and per-step losses) reach the backends too
    logged = [row for row in scalars if 'alpha' in row]
    assert len(logged) == 5 and all(
        'loss_step1' in row and 'loss_step2' in row and 'energy_corrupted' in row for row in logged
    )
    # the clean energy is computed on every 10th iteration (log_clean_energy=10): here only
    # the first one updates its history (the logger repeats its smoothed value in each row)
    clean_energy, _ = runner.message_hub.get_scalar('train/energy_clean').data
    assert len(clean_energy) == 1
    assert [row['energy_clean'] for row in logged] == pytest.approx([clean_energy[0]] * 5, abs=1e-4)
    assert len({row['energy_corrupted'] for row in logged}) == 5  # updated on every one
    assert list(tmp_path.glob('*/vis_data/events.out.tfevents.*'))


def test_two_hooks_watch_training_and_given_images(photo_crops_dir, tmp_path):
    held_out = tmp_path / 'held_out'
    held_out.mkdir()
    for path in sorted(photo_crops_dir.glob('rocket_*.png')):
        (held_out / path.name).write_bytes(path.read_bytes())
    cfg = tiny_demo_run_config(
        photo_crops_dir,
        tmp_path / 'work',
        max_iters=1,
        interval=10,
        num_images=3,
        img_size=32,
        corruptions=[dict(type='ColorizationCorruption')],
        name='held_out',
        dataset=dict(type='CustomDataset', data_root=str(held_out), with_label=False),
    )
    cfg.custom_hooks.append(
        dict(type='RestorationVisualizationHook', num_images=1, name='train', curves=False)
    )
    runner = Runner.from_cfg(cfg)
    runner.train()
    held_out_hook, train_hook = [
        h for h in runner.hooks if isinstance(h, RestorationVisualizationHook)
    ]
    assert [Path(p).name for p in held_out_hook.image_paths] == [
        'rocket_0.png',
        'rocket_2.png',
        'rocket_3.png',
    ]
    assert [Path(p).parent for p in train_hook.image_paths] == [photo_crops_dir]
    keys = {key for row in read_scalars(tmp_path / 'work') for key in row if '/psnr_' in key}
    assert {key for key in keys if key.startswith('held_out/')} == {
        f'held_out/colorization/psnr_{k}' for k in ('corrupted', 'step1', 'step2')
    }
    assert len([key for key in keys if key.startswith('train/')]) == NUM_CORRUPTIONS * 3
    assert (tmp_path / 'work' / 'held_out.png').is_file()
    assert (tmp_path / 'work' / 'train.png').is_file()
    images = sorted(p.name for p in (tmp_path / 'work').glob('*/vis_data/vis_image/*.png'))
    # curves only once there is a training history, and only from the hook that asks
    assert images == [
        'held_out_0.png',
        'held_out_1.png',
        'train_0.png',
        'train_1.png',
        'training_curves_1.png',
    ]


def test_an_unreadable_fixed_image_is_skipped_for_the_next(photo_crops_dir, tmp_path):
    held_out = tmp_path / 'held_out'
    held_out.mkdir()
    (held_out / 'a_broken.png').write_text('not an image')  # index 0, the first picked
    for path in sorted(photo_crops_dir.glob('rocket_*.png'))[:3]:
        (held_out / path.name).write_bytes(path.read_bytes())
    cfg = tiny_demo_run_config(
        photo_crops_dir,
        tmp_path / 'work',
        max_iters=1,
        num_images=2,
        name='held_out',
        dataset=dict(type='CustomDataset', data_root=str(held_out), with_label=False),
    )
    runner = Runner.from_cfg(cfg)
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, RestorationVisualizationHook))
    # indices 0 and 3 of 4: the broken file gives way to index 1
    assert [Path(p).name for p in hook.image_paths] == ['rocket_0.png', 'rocket_2.png']
    log = next((tmp_path / 'work').glob('*/*.log')).read_text()
    assert f'skipping unreadable image {held_out / "a_broken.png"} ' in log
    assert (tmp_path / 'work' / 'held_out.png').is_file()


def test_junk_files_sorted_first_do_not_stop_training(photo_crops_dir, tmp_path):
    """Unreadable files that sort first (as macOS's ``._name.png`` do; CustomDataset skips
    hidden files, so here ``_junk*.png``): the picker skips them with a warning; it does not
    apply the training loader's share of failed loads (which assumes shuffled loads), so
    training starts."""
    held_out = tmp_path / 'held_out'
    held_out.mkdir()
    rockets = sorted(photo_crops_dir.glob('rocket_*.png'))[:3]
    for index in range(12):  # more than the 8 failed loads in a row that stop training
        (held_out / f'_junk{index:02d}.png').write_bytes(b'\x00\x05\x16\x07' + bytes(60))
    for path in rockets:
        (held_out / path.name).write_bytes(path.read_bytes())
    cfg = tiny_demo_run_config(
        photo_crops_dir,
        tmp_path / 'work',
        max_iters=1,
        num_images=2,
        name='held_out',
        dataset=dict(type='CustomDataset', data_root=str(held_out), with_label=False),
    )
    runner = Runner.from_cfg(cfg)
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, RestorationVisualizationHook))
    # index 0 (junk) gives way to the first rocket; index 14, the last, is a rocket
    assert [Path(p).name for p in hook.image_paths] == ['rocket_0.png', rockets[-1].name]
    log = next((tmp_path / 'work').glob('*/*.log')).read_text()
    assert f'skipping unreadable image {held_out / "_junk00.png"} ' in log
    assert 'UnreadableImagesError' not in log
    assert (tmp_path / 'work' / 'held_out.png').is_file()


def test_the_picker_scans_a_bounded_number_of_files(tmp_path):
    """A folder of junk: the picker gives up after ``max_scanned`` files with an error that
    names the count and an example, instead of trying every file."""
    from mmpretrain.registry import DATASETS

    for index in range(40):
        (tmp_path / f'junk{index:02d}.png').write_text('not an image')
    dataset = DATASETS.build(
        dict(type='CustomDataset', data_root=str(tmp_path), with_label=False, pipeline=[])
    )
    hook = RestorationVisualizationHook(num_images=2, max_scanned=10)
    with pytest.raises(ValueError, match=r'none of the 10 images scanned .*junk00\.png'):
        hook._pick_images(dataset)
    # one readable file among the first ten: fewer images than asked, with a warning
    cv2.imwrite(str(tmp_path / 'junk03.png'), np.full((8, 8, 3), 100, np.uint8))
    assert [Path(p).name for p in hook._pick_images(dataset)] == ['junk03.png']
    with pytest.raises(ValueError, match='max_scanned must be an int >= 1, got 0'):
        RestorationVisualizationHook(max_scanned=0)


def test_the_first_drawing_uses_the_alpha_set_on_the_first_batch(
    photo_crops_dir, tmp_path, monkeypatch
):
    from mmpretrain_ebm.engine.hooks import InitialStepSizeHook
    from mmpretrain_ebm.engine.hooks import restoration_visualization_hook as module

    drawn_with = []
    chains = module.restoration_chains

    def recording(model, *args, **kwargs):
        drawn_with.append(float(model.alpha.detach()))
        return chains(model, *args, **kwargs)

    monkeypatch.setattr(module, 'restoration_chains', recording)
    cfg = tiny_demo_run_config(photo_crops_dir, tmp_path, max_iters=1, interval=10, num_images=1)
    cfg.model.alpha = 1.0
    # listed after the drawing hook: the hooks' priorities order them, not the list
    cfg.custom_hooks.append(dict(type='InitialStepSizeHook', target_rms=0.2))
    runner = Runner.from_cfg(cfg)
    runner.train()
    record = next(h for h in runner.hooks if isinstance(h, InitialStepSizeHook)).record
    assert record['alpha'] > 10  # tiny ViT: far from the configured 1.0
    assert len(drawn_with) == 2  # iteration 0 and the end
    assert drawn_with[0] == pytest.approx(record['alpha'], rel=1e-6)
    psnr_rows = [row for row in read_scalars(tmp_path) if 'restoration/denoising/psnr_step1' in row]
    assert [row['step'] for row in psnr_rows] == [0, 1]


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(interval=0), 'interval must be an int >= 1, got 0'),
        (dict(num_images=2.5), 'num_images must be an int >= 1, got 2.5'),
        (dict(img_size=-1), 'img_size must be an int >= 1 or None, got -1'),
        (dict(img_size=True), 'img_size must be an int >= 1 or None, got True'),
        (dict(seed=-3), 'seed must be an int >= 0, got -3'),
        (dict(seed='0'), "seed must be an int >= 0, got '0'"),
        (dict(corruptions=[]), 'non-empty list of corruption config dicts, got'),
        (
            dict(corruptions=dict(type='GridMaskCorruption', cell_size=16)),
            r"list of corruption config dicts, got \{'type': 'GridMaskCorruption'",
        ),
        (dict(dataset='data/val'), "dataset must be a dataset config dict or None, got 'data/val'"),
        (dict(name=''), "name must be a non-empty string.*got ''"),
        (dict(name='a/b'), "without path separators.*got 'a/b'"),
        (dict(curves=1), 'curves must be True or False, got 1'),
        (dict(min_gain='1'), "min_gain must be a number of dB or None, got '1'"),
        (dict(min_gain=True), 'min_gain must be a number of dB or None, got True'),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RestorationVisualizationHook(**kwargs)
