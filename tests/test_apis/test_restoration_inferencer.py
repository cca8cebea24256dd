"""RestorationInferencer and inference_model on an energy model: the chains of the training
hook's computation, for paths, arrays and folders, with PSNR, figures and named errors."""

import re

import cv2
import mmpretrain
import numpy as np
import pytest
import torch
from api_testing import DEMO, save_checkpoint
from mmengine.config import Config
from mmengine.visualization import Visualizer

from mmpretrain_ebm.apis import RestorationInferencer, get_model, inference_model
from mmpretrain_ebm.visualization import (
    draw_restoration_chains,
    find_corruptions,
    restoration_chains,
)

DENOISE = dict(type='DenoisingCorruption')
NAMES = ['grid_mask', 'super_resolution', 'denoising', 'colorization']


@pytest.fixture(scope='module')
def model(tiny_energy):
    config, checkpoint, _ = tiny_energy
    return get_model(str(config), pretrained=str(checkpoint))


def test_chains_are_those_of_the_training_hook(model, wide_photos):
    paths = [str(p) for p in sorted(wide_photos.glob('*.png'))]
    corruptions = find_corruptions(model._config.train_dataloader.dataset.pipeline)
    expected = restoration_chains(model, paths, corruptions, 64, seed=3)
    inferencer = RestorationInferencer(model)
    chains = inferencer(paths, return_datasamples=True, batch_size=len(paths), seed=3)
    assert [c.corruption for c in chains] == NAMES == [c.corruption for c in expected]
    for chain, want in zip(chains, expected):
        np.testing.assert_array_equal(chain.images, want.images)
        np.testing.assert_array_equal(chain.psnr, want.psnr)
        assert chain.image_names == want.image_names
    # one image at a time: the same chains (up to float rounding of the batch)
    one_by_one = inferencer(paths, return_datasamples=True, batch_size=1, seed=3)
    for chain, want in zip(one_by_one, expected):
        assert np.abs(chain.images.astype(int) - want.images).max() <= 1
        np.testing.assert_allclose(chain.psnr, want.psnr, atol=0.05)
    # another seed corrupts differently
    other = inferencer(paths, return_datasamples=True, seed=4)
    assert not np.array_equal(other[0].images[:, 0], chains[0].images[:, 0])


def test_results_per_image_paths_arrays_and_folders(model, wide_photos):
    paths = [str(p) for p in sorted(wide_photos.glob('*.png'))]
    inferencer = RestorationInferencer(model)
    results = inferencer(paths, corruption=DENOISE, seed=1)
    assert [r['img_path'] for r in results] == paths
    for result in results:
        assert list(result['restorations']) == ['denoising']
        clean = result['clean']
        chain = result['restorations']['denoising']['chain']
        psnr = result['restorations']['denoising']['psnr']
        assert clean.shape == (64, 64, 3) and clean.dtype == np.uint8
        assert chain.shape == (3, 64, 64, 3) and chain.dtype == np.uint8  # x0, x1, x2
        # PSNR of every step against the clean image, from the pixels returned
        mse = ((chain.astype(float) - clean.astype(float)) ** 2).mean(axis=(1, 2, 3))
        np.testing.assert_allclose(psnr, 10 * np.log10(255**2 / mse))
        assert psnr[0] < 30  # the corrupted image is noisy
    # the clean image is the test crop of the file: RGB, center of the 64x80 resize
    rgb = cv2.cvtColor(cv2.imread(paths[0]), cv2.COLOR_BGR2RGB)
    assert np.abs(results[0]['clean'].astype(int) - cv2.resize(rgb, (80, 64))[:, 8:72]).mean() < 3
    # a folder gives its images sorted; an array (BGR, as OpenCV reads) gives its file's result
    folder = inferencer(str(wide_photos), corruption=DENOISE, seed=1)
    arrays = inferencer([cv2.imread(p) for p in paths], corruption=DENOISE, seed=1)
    for got in (folder, arrays):
        for a, b in zip(got, results):
            np.testing.assert_array_equal(a['clean'], b['clean'])
            np.testing.assert_array_equal(
                a['restorations']['denoising']['chain'], b['restorations']['denoising']['chain']
            )
    assert [r['img_path'] for r in arrays] == [None] * 4


def test_inference_model_finds_the_restoration_inferencer(model, tiny_energy, wide_photos):
    config, checkpoint, _ = tiny_energy
    path = str(sorted(wide_photos.glob('*.png'))[2])
    expected = RestorationInferencer(model)(path, corruption=DENOISE)[0]
    # from a model, a config file with a checkpoint
    for result in (
        inference_model(model, path, corruption=DENOISE),
        inference_model(str(config), path, pretrained=str(checkpoint), corruption=DENOISE),
    ):
        assert result['img_path'] == path
        np.testing.assert_array_equal(
            result['restorations']['denoising']['chain'],
            expected['restorations']['denoising']['chain'],
        )
    # by default, every corruption of the config
    assert list(inference_model(model, path)['restorations']) == NAMES
    # a restoration depends on the weights: alpha 200 (checkpoint) against 50
    model.alpha.data.fill_(50.0)
    try:
        weaker = inference_model(model, path, corruption=DENOISE)['restorations']['denoising']
    finally:
        model.alpha.data.fill_(200.0)
    assert (
        np.abs(weaker['psnr'][1:] - expected['restorations']['denoising']['psnr'][1:]).max() > 1e-3
    )


def test_figures_are_written_shown_and_kept(model, wide_photos, tmp_path, monkeypatch):
    paths = [str(p) for p in sorted(wide_photos.glob('*.png'))[:2]]
    inferencer = RestorationInferencer(model)
    corruptions = [DENOISE, dict(type='ColorizationCorruption')]
    chains = inferencer(
        paths, return_datasamples=True, corruption=corruptions, out_dir=tmp_path, title='mine'
    )
    for chain in chains:
        written = cv2.cvtColor(
            cv2.imread(str(tmp_path / f'{chain.corruption}.png')), cv2.COLOR_BGR2RGB
        )
        figure = draw_restoration_chains([chain], title=f'{chain.corruption} - mine')
        assert written.shape == figure.shape
        assert np.abs(written.astype(float) - figure).mean() < 1.0
    before = (tmp_path / 'denoising.png').stat().st_mtime_ns
    with pytest.raises(FileExistsError, match=re.escape('denoising.png')):
        inferencer(paths, corruption=corruptions, out_dir=tmp_path)
    assert (tmp_path / 'denoising.png').stat().st_mtime_ns == before
    inferencer(paths, corruption=corruptions, out_dir=tmp_path, overwrite=True)
    # show: each figure in a window named after its corruption (mmengine's Visualizer)
    shown = []
    monkeypatch.setattr(
        Visualizer, 'show', lambda self, image, win_name, wait_time: shown.append((win_name, image))
    )
    figures = inferencer.visualize(paths, chains, show=True, title='mine')
    assert [name for name, _ in shown] == ['denoising', 'colorization']
    assert all(a is b for (_, a), b in zip(shown, figures))
    # two corruptions of one name are numbered
    two = [
        dict(type='GridMaskCorruption', cell_size=8),
        dict(type='GridMaskCorruption', cell_size=16),
    ]
    names = [c.corruption for c in inferencer(paths, return_datasamples=True, corruption=two)]
    assert names == ['grid_mask_1', 'grid_mask_2']


def test_bad_input_is_named(model, tiny_energy, wide_photos, tmp_path):
    inferencer = RestorationInferencer(model)
    photo = str(sorted(wide_photos.glob('*.png'))[0])
    broken = tmp_path / 'notes.png'
    broken.write_text('not an image')
    with pytest.raises(ValueError, match=f'{broken} is not an image that OpenCV can read'):
        inferencer([photo, str(broken)], corruption=DENOISE)
    with pytest.raises(
        FileNotFoundError, match='nowhere.png is neither an image file nor a folder'
    ):
        inferencer(str(tmp_path / 'nowhere.png'))
    with pytest.raises(
        ValueError, match=r'array0: an image array must be HxW \(grey\), HxWx1 or HxWx3 \(BGR\)'
    ):
        inferencer(np.zeros((8, 8, 4), np.uint8))
    with pytest.raises(ValueError, match='array0: an image array must be uint8, got float32'):
        inferencer(np.zeros((8, 8, 3), np.float32))
    # a corruption that does not fit the image size
    with pytest.raises(
        ValueError,
        match=re.escape(
            'astronaut.png: cannot apply GridMaskCorruption at 16 px: cell_size=32 does not fit a '
            '16x16 image'
        ),
    ):
        inferencer(photo, corruption=dict(type='GridMaskCorruption', cell_size=32), img_size=16)
    with pytest.raises(ValueError, match='RandomFlip is not a corruption: it must turn'):
        inferencer(photo, corruption=dict(type='RandomFlip', prob=1.0))
    with pytest.raises(ValueError, match='corruption must be a transform config'):
        inferencer(photo, corruption='denoise')
    with pytest.raises(ValueError, match="unknown argument {'colour'}"):
        inferencer(photo, colour=True)
    # a checkpoint of another config: the full demo model (4 layers, 96-d)
    other = tmp_path / 'iter_400.pth'
    save_checkpoint(Config.fromfile(str(DEMO)), other)
    with pytest.raises(ValueError, match=f'checkpoint {other} does not match the model of ') as err:
        RestorationInferencer(str(tiny_energy[0]), pretrained=str(other))
    assert 'unexpected key in source state_dict: backbone.layers.1' in str(err.value)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    other_state = torch.load(other)['state_dict']
    other_state['alpha'] = torch.tensor(3.0)  # a tensor that fits and would be copied
    torch.save(dict(state_dict=other_state), other)
    with pytest.raises(ValueError, match=f'checkpoint {other} does not match the model of '):
        RestorationInferencer(model, pretrained=str(other))
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    # a model that cannot restore
    classifier = mmpretrain.get_model('resnet18_8xb32_in1k')
    with pytest.raises(TypeError, match='ImageClassifier cannot restore images'):
        RestorationInferencer(classifier)


def test_a_mixed_corruption_writes_its_figure_in_out_dir(model, wide_photos, tmp_path):
    """A MixedCorruption's chain is named after the parts it drew ('denoising/grid_mask'): its
    figure is one file in out_dir, not a path into a folder that does not exist."""
    paths = [str(p) for p in sorted(wide_photos.glob('*.png'))]
    mixed = dict(
        type='MixedCorruption',
        corruptions=[dict(type='DenoisingCorruption'), dict(type='ColorizationCorruption')],
    )
    inferencer = RestorationInferencer(model)
    # a seed that draws both parts for the four images (the chain is named after them)
    seed = next(
        s
        for s in range(50)
        if '/' in inferencer(paths, corruption=mixed, seed=s, return_datasamples=True)[0].corruption
    )
    (chain,) = inferencer(
        paths, corruption=mixed, seed=seed, out_dir=tmp_path, return_datasamples=True
    )
    assert chain.corruption == 'colorization/denoising'
    assert [p.name for p in tmp_path.iterdir()] == ['colorization+denoising.png']
    written = cv2.cvtColor(
        cv2.imread(str(tmp_path / 'colorization+denoising.png')), cv2.COLOR_BGR2RGB
    )
    figure = draw_restoration_chains([chain])  # no title: a model has no file name
    assert written.shape == figure.shape
    assert np.abs(written.astype(float) - figure).mean() < 1.0


def test_a_grey_image_for_a_colour_model_is_read_as_a_file_of_it_would_be(
    model, wide_photos, tmp_path
):
    """An HxW array given to a colour model: converted as OpenCV reads a grey file in colour."""
    path = str(sorted(wide_photos.glob('*.png'))[1])
    grey = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    grey_file = str(tmp_path / 'grey_copy.png')
    cv2.imwrite(grey_file, grey)
    inferencer = RestorationInferencer(model)
    from_array = inferencer(grey, corruption=DENOISE, seed=2)[0]
    from_file = inferencer(grey_file, corruption=DENOISE, seed=2)[0]
    assert from_array['clean'].shape == (64, 64, 3)
    np.testing.assert_array_equal(from_array['clean'], from_file['clean'])
    np.testing.assert_array_equal(
        from_array['restorations']['denoising']['chain'],
        from_file['restorations']['denoising']['chain'],
    )
    # its three channels are equal: a grey picture
    assert (from_array['clean'][..., 0] == from_array['clean'][..., 2]).all()


def test_the_seed_gives_the_same_corruptions_for_the_same_inputs_in_the_same_order(
    model, wide_photos
):
    """What the seed promises (class docstring): one stream runs through the images in order,
    so the same inputs in the same order give the same corrupted images, and an image's
    corruption depends on the images before it in the call."""
    paths = [str(p) for p in sorted(wide_photos.glob('*.png'))]
    inferencer = RestorationInferencer(model)

    def corrupted(images):
        (chain,) = inferencer(images, corruption=DENOISE, seed=5, return_datasamples=True)
        return chain.images[:, 0]

    first = corrupted(paths)
    np.testing.assert_array_equal(corrupted(paths), first)
    np.testing.assert_array_equal(corrupted(paths[:2]), first[:2])  # a prefix: the same
    # the last image alone, or after others: another draw of its noise
    assert not np.array_equal(corrupted(paths[-1:])[0], first[-1])
    # and the docstring says so (it used to promise the same corruption per seed)
    assert 'the same inputs in the same order' in ' '.join(RestorationInferencer.__doc__.split())


def test_the_config_test_pipeline_is_used_as_it_is_at_its_crop_size(tiny_energy, wide_photos):
    """A test pipeline that resizes the short edge to 80 px and crops 64: the restoration's
    clean image is that crop (the inferencer does not rebuild the pipeline); another img_size
    sets both the resize and the crop to it."""
    from mmcv.transforms import Compose
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import TRANSFORMS

    config, checkpoint, _ = tiny_energy
    cfg = Config.fromfile(str(config))
    resize, crop = cfg.test_dataloader.dataset.pipeline[1:3]
    assert (resize.type, crop.type, crop.crop_size) == ('ResizeEdge', 'CenterCrop', 64)
    resize.scale = 80
    model = get_model(cfg, pretrained=str(checkpoint))
    path = str(sorted(wide_photos.glob('*.png'))[0])
    init_default_scope('mmpretrain')

    def crop_of(pipeline) -> np.ndarray:
        packed = Compose([TRANSFORMS.build(t) for t in pipeline])(dict(img_path=path))
        return cv2.cvtColor(packed['inputs'].permute(1, 2, 0).numpy(), cv2.COLOR_BGR2RGB)

    want = crop_of(cfg.test_dataloader.dataset.pipeline)
    inferencer = RestorationInferencer(model)
    clean = inferencer(path, corruption=DENOISE)[0]['clean']
    assert clean.shape == (64, 64, 3)
    assert np.abs(clean.astype(int) - want).max() <= 1
    # resizing to the crop size first (the old, rebuilt pipeline) gives another image
    load, pack = cfg.test_dataloader.dataset.pipeline[0], dict(type='PackInputs')
    rebuilt = crop_of([load, dict(resize, scale=64), crop, pack])
    assert np.abs(clean.astype(int) - rebuilt).mean() > 5
    # another img_size: resized and cropped to it
    small = inferencer(path, corruption=DENOISE, img_size=32)[0]['clean']
    resized = dict(resize, scale=32)
    want = crop_of([load, resized, dict(crop, crop_size=32), pack])
    assert np.abs(small.astype(int) - want).max() <= 1
