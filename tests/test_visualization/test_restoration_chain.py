"""Restoration chains: corruption discovery, deterministic batches, chain contents, drawing."""

import random

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

import mmpretrain_ebm  # noqa: F401  (registers the algorithm and the corruptions)
from mmpretrain_ebm.visualization import (
    RestorationChain,
    compute_restoration_chain,
    draw_curves,
    draw_restoration_chains,
    find_corruptions,
    find_crop_size,
    load_corrupted_batch,
    mean_psnr,
    psnr,
    restoration_chains,
    step_alignment,
    to_uint8_images,
)

IMG = 64  # the side of the photo_crops_dir crops
NORM = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
GRID = dict(type='GridMaskCorruption', cell_size=8, mask_ratio=0.5, **NORM)
COLOR = dict(type='ColorizationCorruption', **NORM)


@pytest.fixture(scope='module')
def model():
    init_default_scope('mmpretrain')
    model = MODELS.build(
        dict(
            type='EnergyRestorationAlgorithm',
            backbone=dict(
                type='VisionTransformer',
                img_size=IMG,
                patch_size=8,
                out_type='avg_featmap',
                final_norm=False,
                arch=dict(embed_dims=32, num_layers=1, num_heads=2, feedforward_channels=64),
            ),
            head=dict(type='EnergyHead', in_channels=32),
            alpha=50.0,
            data_preprocessor=dict(type='SelfSupDataPreprocessor', to_rgb=True, **NORM),
        )
    )
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def image_paths(photo_crops_dir):
    return sorted(str(p) for p in photo_crops_dir.glob('*.png'))[::4]  # one per photograph


def test_find_corruptions_expands_a_mixed_corruption_and_keeps_a_single_one():
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='MixedCorruption', corruptions=[GRID, COLOR]),
        dict(type='PackInputs'),
    ]
    assert find_corruptions(pipeline) == [GRID, COLOR]
    assert find_corruptions([dict(type='LoadImageFromFile'), GRID]) == [GRID]
    with pytest.raises(ValueError, match='no \\*Corruption transform.*RandomFlip'):
        find_corruptions([dict(type='LoadImageFromFile'), dict(type='RandomFlip')])


def test_find_crop_size_reads_the_training_crop():
    assert find_crop_size([dict(type='RandomResizedCrop', scale=224)]) == 224
    assert find_crop_size([dict(type='RandomResizedCrop', scale=(64, 64))]) == 64
    with pytest.raises(ValueError, match='pass img_size'):
        find_crop_size([dict(type='RandomResizedCrop', scale=(64, 32))])


def test_psnr_of_known_errors():
    clean = np.full((2, 4, 4, 3), 100, dtype=np.uint8)
    noisy = clean.copy()
    noisy[0] += 10  # MSE 100 -> 10 log10(255^2 / 100)
    values = psnr(noisy, clean)
    assert values[0] == pytest.approx(10 * np.log10(255**2 / 100))
    assert values[1] == np.inf


def test_to_uint8_images_inverts_the_normalization(model, image_paths):
    clean, _, _ = load_corrupted_batch(image_paths, GRID, IMG, model.data_preprocessor)
    pixels = to_uint8_images(clean, model.data_preprocessor.mean, model.data_preprocessor.std)
    first = cv2.cvtColor(cv2.imread(image_paths[0]), cv2.COLOR_BGR2RGB)
    # the crops are already IMG px: resize and center crop leave them as they are
    assert pixels.shape == (len(image_paths), IMG, IMG, 3)
    np.testing.assert_array_equal(pixels[0], first)


def test_corrupted_batch_is_fixed_and_leaves_the_global_rngs_alone(model, image_paths):
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    before = random.random(), np.random.rand(), torch.rand(1).item()
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    _, first, name = load_corrupted_batch(image_paths, GRID, IMG, model.data_preprocessor, seed=3)
    after = random.random(), np.random.rand(), torch.rand(1).item()
    assert after == before
    _, again, _ = load_corrupted_batch(image_paths, GRID, IMG, model.data_preprocessor, seed=3)
    _, other, _ = load_corrupted_batch(image_paths, GRID, IMG, model.data_preprocessor, seed=4)
    assert name == 'grid_mask'
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    # half of the 8-px cells hold the mean, i.e. 0 after normalization
    assert (first == 0).all(dim=1).float().mean().item() == pytest.approx(0.5, abs=0.01)


def test_corrupted_batch_never_reseeds_cuda_generators(model, image_paths, monkeypatch):
    """The restore covers the CPU streams only, so CUDA's must not be seeded at all (a
    training run's dropout and drop path draw from them)."""
    reseeded = []
    monkeypatch.setattr(torch.cuda, 'manual_seed_all', reseeded.append)
    monkeypatch.setattr(torch.cuda, 'manual_seed', reseeded.append)
    load_corrupted_batch(image_paths, GRID, IMG, model.data_preprocessor, seed=3)
    assert reseeded == []


def test_chain_holds_corrupted_steps_and_clean_and_keeps_train_mode(model, image_paths):
    clean, corrupted, name = load_corrupted_batch(image_paths, GRID, IMG, model.data_preprocessor)
    model.train()
    chain = compute_restoration_chain(model, clean, corrupted, name, ['a', 'b', 'c', 'd'])
    assert model.training
    mean, std = model.data_preprocessor.mean, model.data_preprocessor.std
    assert chain.images.shape == (4, 4, IMG, IMG, 3) and chain.images.dtype == np.uint8
    assert chain.num_steps == 2
    np.testing.assert_array_equal(chain.images[:, 0], to_uint8_images(corrupted, mean, std))
    np.testing.assert_array_equal(chain.images[:, -1], to_uint8_images(clean, mean, std))
    # the steps are the model's restoration: they move the pixels, and step 2 moves on
    expected = model.restore(corrupted)
    np.testing.assert_array_equal(chain.images[:, 2], to_uint8_images(expected[2], mean, std))
    assert (chain.images[:, 1] != chain.images[:, 0]).any()
    assert (chain.images[:, 2] != chain.images[:, 1]).any()
    np.testing.assert_allclose(chain.psnr, psnr(chain.images[:, :3], chain.images[:, 3:]))


def test_chains_and_psnr_scalars_name_every_corruption_uniquely(model, image_paths):
    grid16 = dict(GRID, cell_size=16)
    chains = restoration_chains(model, image_paths[:2], [GRID, grid16, COLOR], IMG)
    assert [c.corruption for c in chains] == ['grid_mask_1', 'grid_mask_2', 'colorization']
    scalars = mean_psnr(chains)
    assert set(scalars) == {
        f'{c}/psnr_{k}'
        for c in ('grid_mask_1', 'grid_mask_2', 'colorization')
        for k in ('corrupted', 'step1', 'step2')
    }
    assert scalars['colorization/psnr_step2'] == pytest.approx(chains[2].psnr[:, 2].mean())


def test_drawing_grows_with_rows_and_is_rgb(model, image_paths):
    chains = restoration_chains(model, image_paths[:2], [GRID, COLOR], IMG)
    one = draw_restoration_chains(chains[:1], title='t')
    two = draw_restoration_chains(chains, title='t')
    assert one.dtype == np.uint8 and one.ndim == 3 and one.shape[2] == 3
    assert two.shape[0] > 1.7 * one.shape[0] - 100 and two.shape[1] == one.shape[1]
    assert one.std() > 10  # not a blank canvas
    with pytest.raises(ValueError, match='no restoration chains'):
        draw_restoration_chains([])


def test_the_drawing_names_what_gained_less_than_min_gain_in_a_title_line(model, image_paths):
    chains = restoration_chains(model, image_paths[:1], [GRID, COLOR], IMG)
    gains = [c.mean_psnr()[-1] - c.mean_psnr()[0] for c in chains]
    plain = draw_restoration_chains(chains, title='t')
    all_visible = draw_restoration_chains(chains, title='t', min_gain=min(gains) - 1)
    some_below = draw_restoration_chains(chains, title='t', min_gain=max(gains) + 1)
    assert all_visible.shape == plain.shape  # every gain above: no line added
    assert some_below.shape[0] == plain.shape[0] + 35  # one title line of 0.35 in at 100 dpi
    assert not np.array_equal(all_visible, plain)  # the row labels carry the gains


def test_mean_psnr_leaves_out_images_the_corruption_did_not_change(model, tmp_path):
    """Colorization leaves a grey photograph as it is (PSNR inf): the mean is over the
    images it changed, not inf (nor -inf for the gain)."""
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 255, (IMG, IMG, 1), dtype=np.uint8).repeat(3, axis=2)
    colour = rng.integers(0, 255, (IMG, IMG, 3), dtype=np.uint8)
    paths = [str(tmp_path / 'grey.png'), str(tmp_path / 'colour.png')]
    for path, image in zip(paths, (grey, colour)):
        assert cv2.imwrite(path, image)
    (chain,) = restoration_chains(model, paths, [COLOR], IMG)
    np.testing.assert_array_equal(chain.changed, [False, True])
    assert np.isinf(chain.psnr[0, 0])
    np.testing.assert_allclose(chain.mean_psnr(), chain.psnr[1])
    assert all(np.isfinite(value) for value in mean_psnr([chain]).values())
    unchanged = RestorationChain('c', chain.images[:1], chain.psnr[:1], paths[:1])
    assert np.isnan(unchanged.mean_psnr()).all()


def test_draw_curves_plots_one_panel_per_scalar():
    one = draw_curves({'alpha': [1.0, 1.1, 1.2]})
    two = draw_curves({'alpha': [1.0, 1.1], 'loss_step1': [0.3, 0.2]})
    assert two.shape[1] > 1.8 * one.shape[1] and two.shape[0] == one.shape[0]
    with pytest.raises(ValueError, match='no curves'):
        draw_curves({})


def chain_of(*frames):
    """A one-image chain from float frames [H, W, 3] (corrupted, steps..., clean)."""
    images = np.stack([np.clip(np.round(f), 0, 255) for f in frames])[None].astype(np.uint8)
    return RestorationChain('test', images, psnr(images[:, :-1], images[:, -1:]), ['a'])


def test_step_alignment_of_known_steps():
    rng = np.random.default_rng(0)
    clean = rng.integers(60, 200, size=(8, 8, 3)).astype(np.float64)
    corrupted = clean + 40.0  # a uniform brightness error
    halfway = chain_of(corrupted, corrupted - 20, clean)
    assert step_alignment(halfway) == pytest.approx(dict(cos=1.0, ratio=0.5, shift=1.0))
    rows, cols = np.indices((8, 8))
    noise = np.repeat((10.0 * (-1) ** (rows + cols))[..., None], 3, axis=2)  # zero mean
    sideways = step_alignment(chain_of(corrupted, corrupted + noise, clean))
    assert sideways['shift'] == pytest.approx(0.0, abs=1e-12)
    assert sideways['cos'] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match='step must be in 1..1'):
        step_alignment(halfway, 2)


def test_a_step_gains_exactly_when_cos_exceeds_half_the_ratio(model, image_paths):
    outcomes = set()
    for alpha in (5.0, 50.0, 5000.0):  # small, medium and overshooting steps of one energy
        with torch.no_grad():
            model.alpha.fill_(alpha)
        try:
            chains = restoration_chains(model, image_paths, [GRID, COLOR], IMG)
        finally:
            with torch.no_grad():
                model.alpha.fill_(50.0)
        for chain in chains:
            for image in range(len(chain.images)):
                one = RestorationChain(
                    'x', chain.images[image : image + 1], chain.psnr[image : image + 1], ['a']
                )
                for step in (1, 2):
                    align = step_alignment(one, step)
                    gain = chain.psnr[image, step] - chain.psnr[image, step - 1]
                    if abs(align['cos'] - align['ratio'] / 2) > 1e-9:
                        assert (gain > 0) == (align['cos'] > align['ratio'] / 2)
                        outcomes.add(bool(gain > 0))
    assert outcomes == {True, False}  # both sides of the criterion were checked
