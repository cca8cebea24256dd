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


def by_hand(path) -> torch.Tensor:
    """80x100 BGR file -> RGB, bicubic (PIL) to 64x80, center 64x64, normalized [1, 3, 64, 64]."""
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert rgb.shape == (80, 100, 3)
    resized = np.asarray(Image.fromarray(rgb).resize((80, 64), Image.BICUBIC))
    crop = resized[:, 8:72].astype(np.float64)
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
    with pytest.raises(Exception, match='notes.png'):
        extractor(str(broken))
