"""A classifier fine-tuned with our fine-tune config: inference_model gives its class, as
mmpretrain does for its own classifiers."""

from pathlib import Path

import pytest
import torch
from api_testing import ROOT
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS, TRANSFORMS

from mmpretrain_ebm.apis import ClassifierInferencer, get_model, inference_model

FINETUNE = (
    ROOT / 'configs' / 'benchmarks' / 'mmpretrain' / 'deit-small-p16_8xb128-amp-coslr-100e_in1k.py'
)
CLASSES = ('astronaut', 'coffee')


def tiny_finetune_config() -> Config:
    """The DeiT-S fine-tune config with a 1-layer, 32-d ViT at 64 px and two classes."""
    cfg = Config.fromfile(str(FINETUNE))
    cfg.model.backbone.arch = dict(
        embed_dims=32, num_layers=1, num_heads=2, feedforward_channels=64
    )
    cfg.model.backbone.img_size = 64
    resize, crop = cfg.test_dataloader.dataset.pipeline[1:3]
    resize.scale, crop.crop_size = 72, 64  # 256 and 224 in the config
    cfg.model.backbone.init_cfg = None
    cfg.model.backbone.drop_path_rate = 0.0
    cfg.model.head.in_channels = 32
    cfg.model.head.num_classes = 2
    cfg.model.train_cfg = None  # no Mixup/CutMix for these few steps
    cfg.data_preprocessor.num_classes = 2
    return cfg


@pytest.fixture(scope='module')
def fine_tuned(tmp_path_factory, labelled_photo_dir):
    """A tiny classifier trained on the two photographs' crops through the config's test
    pipeline, saved with its class names as mmpretrain's runner saves them."""
    folder = tmp_path_factory.mktemp('fine_tuned')
    cfg = tiny_finetune_config()
    config = folder / 'tiny_finetune.py'
    cfg.dump(str(config))
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
    model.init_weights()
    images = sorted(labelled_photo_dir.rglob('*.png'))
    labels = [0 if 'astronaut' in p.parent.name else 1 for p in images]
    pipeline = Compose([TRANSFORMS.build(t) for t in cfg.test_dataloader.dataset.pipeline])
    samples = []
    for path, label in zip(images, labels):
        sample = pipeline(dict(img_path=str(path)))
        sample['data_samples'].set_gt_label(label)
        samples.append(sample)
    data = model.data_preprocessor(default_collate(samples), True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(40):
        loss = model.loss(data['inputs'], data['data_samples'])['loss']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    checkpoint = folder / 'epoch_1.pth'
    torch.save(
        dict(meta=dict(dataset_meta=dict(classes=CLASSES)), state_dict=model.state_dict()),
        checkpoint,
    )
    return config, checkpoint, images, labels


def test_inference_model_gives_the_class(fine_tuned):
    config, checkpoint, images, labels = fine_tuned
    model = get_model(str(config), pretrained=str(checkpoint))
    assert type(model).__name__ == 'ImageClassifier'
    for path, label in zip(images, labels):
        result = inference_model(model, str(path))
        assert result['pred_label'] == label, path.name
        assert result['pred_class'] == CLASSES[label]
        assert result['pred_scores'].shape == (2,)
    # from the config file and the checkpoint
    for path, label in zip(images[::4], labels[::4]):
        result = inference_model(str(config), str(path), pretrained=str(checkpoint))
        assert result['pred_class'] == CLASSES[label]
    # the scores are the model's on the test crop
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(str(config))
    pipeline = Compose([TRANSFORMS.build(t) for t in cfg.test_dataloader.dataset.pipeline])
    data = model.data_preprocessor(default_collate([pipeline(dict(img_path=str(images[0])))]))
    with torch.no_grad():
        scores = model(data['inputs'], mode='tensor').softmax(-1)[0]
    result = inference_model(model, str(images[0]))
    torch.testing.assert_close(torch.from_numpy(result['pred_scores']), scores)


def test_a_pretraining_checkpoint_is_not_a_classifier(fine_tuned, tiny_energy):
    config, _, _, _ = fine_tuned
    with pytest.raises(ValueError, match=f'checkpoint {tiny_energy[1]} does not match'):
        inference_model(str(config), str(Path(__file__)), pretrained=str(tiny_energy[1]))
    # the classifier inferencer loads strictly (mmpretrain's copies what fits and warns)
    with pytest.raises(ValueError, match=f'checkpoint {tiny_energy[1]} does not match'):
        ClassifierInferencer(str(config), pretrained=str(tiny_energy[1]))
