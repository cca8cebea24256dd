"""Every model of our zoo (random weights) through FeatureExtractor, RestorationInferencer and
inference_model on a small PNG of its channel count: the APIs read and transform images as
the config's test pipeline (or ``inference_pipeline``) says, so a grey (Fashion-MNIST) model
reads grey images, and they give what the model computes on the pipeline's crop."""

import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope
from mmpretrain import list_models
from mmpretrain.registry import TRANSFORMS

# importing mmpretrain_ebm (here through its apis) registers our model zoo
from mmpretrain_ebm.apis import FeatureExtractor, RestorationInferencer, get_model, inference_model
from mmpretrain_ebm.apis.inputs import inference_pipeline, model_channels
from mmpretrain_ebm.visualization import find_corruptions, find_crop_size

ZOO = sorted(list_models('*ebm*'))


@pytest.fixture(scope='module')
def pngs(tmp_path_factory) -> dict:
    """{channels: path} of a 30x38 picture (smooth gradients and a disc), grey and colour."""
    folder = tmp_path_factory.mktemp('small_pngs')
    y, x = np.mgrid[0:30, 0:38].astype(float)
    bgr = np.stack([x * 6, y * 7, 255 - (x + y) * 3], axis=-1)
    bgr[(y - 14) ** 2 + (x - 20) ** 2 < 60] = (20, 200, 90)
    bgr = bgr.clip(0, 255).astype(np.uint8)
    paths = {1: folder / 'grey.png', 3: folder / 'colour.png'}
    cv2.imwrite(str(paths[1]), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(paths[3]), bgr)
    assert cv2.imread(str(paths[1]), cv2.IMREAD_UNCHANGED).ndim == 2  # a 1-channel PNG
    return {c: str(p) for c, p in paths.items()}


def by_hand(model, path: str):
    """The config's pipeline run on the file as a test dataloader runs it: (packed uint8 crop
    [C, H, W], the data preprocessor's inputs)."""
    init_default_scope('mmpretrain')
    pipeline = Compose([TRANSFORMS.build(t) for t in inference_pipeline(model._config)])
    sample = pipeline(dict(img_path=path))
    inputs = model.data_preprocessor(default_collate([sample]), False)['inputs']
    return sample['inputs'], inputs


def test_the_zoo_holds_grey_and_colour_models():
    grey = [n for n in ZOO if 'fashion-mnist' in n]
    assert len(grey) == 8 and len(ZOO) == 47  # 6 pretraining configs and 2 fine-tuned


@pytest.mark.parametrize('name', ZOO)
def test_every_zoo_model_reads_an_image_of_its_channel_count(name, pngs):
    torch.manual_seed(0)
    model = get_model(name)  # random weights
    channels = model_channels(model)
    assert channels == model._config.model.backbone.get('in_channels', 3)
    png = pngs[channels]
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    array = cv2.imread(png, flag)  # HxW for grey, HxWx3 BGR for colour
    crop, inputs = by_hand(model, png)
    # a ViT's size; a ConvNet takes any: the pipeline's crop
    size = model._config.model.backbone.get('img_size') or find_crop_size(
        inference_pipeline(model._config)
    )
    assert crop.shape == (channels, size, size)

    with torch.no_grad():
        expected = model.extract_feat(inputs)
    expected = expected[0] if isinstance(expected, (list, tuple)) else expected
    for feats in FeatureExtractor(model)([png, array], batch_size=2):
        feat = feats[0] if isinstance(feats, (list, tuple)) else feats
        torch.testing.assert_close(feat, expected[0], atol=1e-4, rtol=1e-4)

    if type(model).__name__ == 'EnergyRestorationAlgorithm':
        corruption = find_corruptions(model._config.train_dataloader.dataset.pipeline)[0]
        (result,) = RestorationInferencer(model)(png, corruption=corruption, seed=0)
        label = next(iter(result['restorations']))
        chain = result['restorations'][label]['chain']
        assert result['clean'].shape == (size, size, channels)
        assert chain.shape == (model.num_steps + 1, size, size, channels)
        # the clean image is the pipeline's crop (RGB where the model converts BGR)
        want = crop.permute(1, 2, 0).numpy()
        if getattr(model.data_preprocessor, '_channel_conversion', False):
            want = want[..., ::-1]
        assert np.abs(result['clean'].astype(int) - want).max() <= 1
        for other in (
            inference_model(model, png, corruption=corruption, seed=0),
            RestorationInferencer(model)(array, corruption=corruption, seed=0)[0],
        ):
            np.testing.assert_array_equal(other['restorations'][label]['chain'], chain)
    else:
        assert type(model).__name__ == 'ImageClassifier'
        with torch.no_grad():
            scores = model(inputs, mode='tensor').softmax(-1)[0]
        for image in (png, array):
            result = inference_model(model, image)
            assert result['pred_scores'].shape == (model.head.num_classes,)
            torch.testing.assert_close(
                torch.from_numpy(result['pred_scores']), scores, atol=1e-5, rtol=1e-4
            )
