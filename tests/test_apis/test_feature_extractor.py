"""FeatureExtractor on a pretraining config: the backbone's features of the test pipeline's
crops, the same as the backbone applied by hand."""

import cv2
import numpy as np
import pytest
import torch
from mmpretrain import FeatureExtractor as MMPretrainFeatureExtractor
from PIL import Image

from mmpretrain_ebm.apis import FeatureExtractor, get_model

MEAN = np.array([123.675, 116.28, 103.53])
STD = np.array([58.395, 57.12, 57.375])


def by_hand(path, size: int = 64) -> torch.Tensor:
    """80x100 BGR file -> RGB, bicubic (PIL) to size x 1.25 size, the center size x size,
    normalized: [1, 3, size, size]."""
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert rgb.shape == (80, 100, 3)
    width = size * 5 // 4
    resized = np.asarray(Image.fromarray(rgb).resize((width, size), Image.BICUBIC))
    left = (width - size) // 2
    crop = resized[:, left : left + size].astype(np.float64)
    normalized = (crop - MEAN) / STD
    return torch.from_numpy(normalized).permute(2, 0, 1)[None].float()


def test_features_are_the_backbone_of_the_test_crops(tiny_energy, wide_photos):
    config, checkpoint, _ = tiny_energy
    paths = sorted(wide_photos.glob('*.png'))
    model = get_model(str(config), pretrained=str(checkpoint))
    with torch.no_grad():
        expected = [model.backbone(by_hand(path))[0][0] for path in paths]
    assert expected[0].shape == (32,)  # ViT tokens pooled (out_type='avg_featmap')

    # ours (strict loading) and mmpretrain's, from the config or from the model
    for extractor, folder_too in (
        (FeatureExtractor(str(config), pretrained=str(checkpoint)), True),
        (FeatureExtractor(model), True),
        # mmpretrain's lists a folder in no fixed order
        (MMPretrainFeatureExtractor(str(config), pretrained=str(checkpoint), device='cpu'), False),
    ):
        for inputs in [[str(p) for p in paths]] + [str(wide_photos)] * folder_too:
            feats = extractor(inputs, batch_size=3)
            assert len(feats) == len(paths)
            for (feat,), want in zip(feats, expected):
                torch.testing.assert_close(feat, want, atol=1e-5, rtol=1e-4)
    # an HxWx3 BGR array gives the features of its file
    array = cv2.imread(str(paths[1]))
    (feat,) = FeatureExtractor(model)(array)[0]
    torch.testing.assert_close(feat, expected[1], atol=1e-5, rtol=1e-4)
    # model.extract_feat is the backbone as well
    with torch.no_grad():
        torch.testing.assert_close(model.extract_feat(by_hand(paths[2]))[0][0], expected[2])
    # the features depend on the weights: an untrained model gives others
    (other,) = FeatureExtractor(str(config), pretrained=False)(str(paths[0]))[0]
    assert (other - expected[0]).abs().max() > 1e-2


def test_bad_inputs_of_the_extractor_are_named(tiny_energy, tmp_path):
    config, checkpoint, _ = tiny_energy
    extractor = FeatureExtractor(str(config), pretrained=str(checkpoint))
    broken = tmp_path / 'notes.png'
    broken.write_text('not an image')
    with pytest.raises(ValueError, match=f'{broken} is not an image that OpenCV can read'):
        extractor(str(broken))
    with pytest.raises(FileNotFoundError, match='nowhere.png is neither an image file nor'):
        extractor(str(tmp_path / 'nowhere.png'))


@pytest.mark.parametrize(
    'name',
    [
        'ebm_convnext-tiny_8xb32-mixed-amp-coslr-200e_in1k',
        'ebm_swin-tiny_8xb32-mixed-amp-coslr-200e_in1k',
    ],
)
def test_full_size_models_by_name(name, wide_photos):
    """Other backbones, at the configs' 224 px: the features of the test crop."""
    path = sorted(wide_photos.glob('*.png'))[3]
    extractor = FeatureExtractor(name, pretrained=False)
    feats = extractor(str(path))[0]
    with torch.no_grad():
        expected = extractor.model.extract_feat(by_hand(path, 224))
    assert len(feats) == len(expected) == 1
    assert feats[0].shape == expected[0][0].shape
    torch.testing.assert_close(feats[0], expected[0][0], atol=1e-4, rtol=1e-4)
