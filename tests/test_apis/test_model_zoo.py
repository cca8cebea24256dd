"""Our model zoo by name: list_models, get_model (ours and mmpretrain's), clear errors."""

import importlib.util
import re
from pathlib import Path

import mmpretrain
import pytest
import torch
import yaml
from api_testing import ROOT, save_checkpoint
from mmpretrain import FeatureExtractor as MMPretrainFeatureExtractor
from mmpretrain import list_models

from mmpretrain_ebm.apis import (
    MODEL_INDEX,
    FeatureExtractor,
    RestorationInferencer,
    get_model,
    inference_model,
    our_model_names,
    register_model_index,
)
from mmpretrain_ebm.visualization.restoration_chain import find_crop_size

DEIT_MIXED = 'ebm_deit-small-p16_8xb32-mixed-amp-coslr-200e_in1k'
DEMO_NAME = 'ebm_vit-mini-p8_1xb16-mixed-coslr-400i_skimage-64px.py'


def metafile_models() -> dict:
    """{name: config path} of model-index.yml, read as YAML."""
    index = yaml.safe_load(MODEL_INDEX.read_text())
    models = {}
    for metafile in index['Import']:
        for model in yaml.safe_load((ROOT / metafile).read_text())['Models']:
            models[model['Name']] = ROOT / model['Config']
    return models


def test_list_models_lists_every_model_of_our_index():
    models = metafile_models()
    pretraining = {n for n, config in models.items() if config.parent.name == 'ebm'}
    assert len(pretraining) == 27 and len(models) == 47
    assert set(list_models('*ebm*')) == set(models) == set(our_model_names())
    assert set(list_models('ebm')) == pretraining  # the pattern matches with any postfix
    # registered once: a second call (a second import) adds nothing and raises nothing
    assert register_model_index() == []
    # mmpretrain's own models are still there
    assert 'resnet50_8xb32_in1k' in list_models('resnet50')


@pytest.fixture(scope='module')
def deit_checkpoint(tmp_path_factory):
    """A checkpoint of the DeiT-S mixed config (random weights, alpha 7) and its state dict."""
    cfg = mmpretrain.apis.ModelHub.get(DEIT_MIXED).config
    checkpoint = tmp_path_factory.mktemp('deit') / 'epoch_200.pth'
    return checkpoint, save_checkpoint(cfg, checkpoint, seed=3, alpha=7.0)


def test_get_model_by_name_loads_a_checkpoint_of_its_config(deit_checkpoint):
    checkpoint, state_dict = deit_checkpoint
    for build in (get_model, mmpretrain.get_model):  # ours (strict) and mmpretrain's
        model = build(DEIT_MIXED, pretrained=str(checkpoint))
        assert type(model).__name__ == 'EnergyRestorationAlgorithm'
        assert model.alpha.item() == 7.0
        loaded = model.state_dict()
        assert all(torch.equal(loaded[key], value) for key, value in state_dict.items())
        assert model._config.filename == str(metafile_models()[DEIT_MIXED])
        assert not model.training
    # untrained: another initialization
    fresh = get_model(DEIT_MIXED, pretrained=False)
    assert fresh.alpha.item() == 1.0


def test_a_name_that_is_not_there_gets_the_closest_names():
    with pytest.raises(ValueError, match='Failed to find model "ebm_deit-small-p16_mixed"') as err:
        get_model('ebm_deit-small-p16_mixed')
    closest = re.search(r'closest names: (\[.*\])', str(err.value)).group(1)
    assert DEIT_MIXED in closest
    with pytest.raises(ValueError, match='Failed to find model'):  # mmpretrain's own error
        mmpretrain.get_model('ebm_deit-small-p16_mixed')


def test_pretrained_true_says_that_no_weights_are_published():
    message = re.escape(
        f'{DEIT_MIXED}: no weights are published for this model yet (model-index.yml has no '
        "Weights URL); pass pretrained='path/to/checkpoint.pth'"
    )
    with pytest.raises(ValueError, match=message):
        get_model(DEIT_MIXED, pretrained=True)
    for inferencer in (FeatureExtractor, RestorationInferencer):  # ours default to True
        with pytest.raises(ValueError, match=message):
            inferencer(DEIT_MIXED)
    # mmpretrain's own functions keep their behaviour (we patch nothing): a warning and an
    # untrained model
    with pytest.warns(UserWarning, match='Unable to find pre-defined checkpoint'):
        assert mmpretrain.get_model(DEIT_MIXED, pretrained=True).alpha.item() == 1.0
    with pytest.warns(UserWarning, match='Unable to find pre-defined checkpoint'):
        MMPretrainFeatureExtractor(DEIT_MIXED)
    # a config path with pretrained=True needs load_from
    config = str(metafile_models()[DEIT_MIXED])
    with pytest.raises(ValueError, match='names no checkpoint .load_from is empty.'):
        get_model(config, pretrained=True)


def test_a_checkpoint_of_another_config_is_refused_by_name(tiny_energy, tmp_path):
    _, tiny_checkpoint, _ = tiny_energy
    with pytest.raises(ValueError) as err:
        get_model(DEIT_MIXED, pretrained=str(tiny_checkpoint))
    message = str(err.value)
    assert message.startswith(
        f'checkpoint {tiny_checkpoint} does not match the model of {DEIT_MIXED}'
    )
    assert 'size mismatch for backbone.pos_embed' in message
    with pytest.raises(FileNotFoundError, match=f'checkpoint {tmp_path}/none.pth does not exist'):
        get_model(DEIT_MIXED, pretrained=str(tmp_path / 'none.pth'))
    with pytest.raises(FileNotFoundError, match='config nowhere.py does not exist'):
        get_model('nowhere.py')


def test_every_pretraining_config_declares_the_inference_pipeline():
    """Resize the short edge to the training crop and center-crop it, for every config."""
    from mmengine.config import Config

    configs = sorted((ROOT / 'configs' / 'ebm').glob('*.py')) + [
        ROOT / 'configs' / 'ebm_vit-b_8xb256.py'
    ]
    for path in configs:
        cfg = Config.fromfile(str(path))
        crop = find_crop_size(cfg.train_dataloader.dataset.pipeline)
        # a ViT is built for one size; a ConvNet (no img_size) takes the crop as it comes
        assert cfg.model.backbone.get('img_size', crop) == crop, path.name
        grey = cfg.model.backbone.get('in_channels', 3) == 1  # Fashion-MNIST's
        load = dict(type='LoadImageFromFile', **(dict(color_type='grayscale') if grey else {}))
        assert [dict(step) for step in cfg.test_dataloader.dataset.pipeline] == [
            load,
            dict(
                type='ResizeEdge',
                scale=crop,
                edge='short',
                backend='pillow',
                interpolation='bicubic',
            ),
            dict(type='CenterCrop', crop_size=crop),
            dict(type='PackInputs'),
        ], path.name
        # mmengine's Runner wants a test loop and an evaluator with a test dataloader
        assert cfg.test_cfg == dict(type='TestLoop') and cfg.test_evaluator == [], path.name
    assert Path(configs[0]).is_file() and len(configs) == 30


def test_mmengine_runner_takes_the_pretraining_configs(tmp_path):
    """The test dataloader comes with a test loop and an empty evaluator: the runner builds."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    for path in (ROOT / 'configs' / 'ebm_vit-b_8xb256.py', ROOT / 'configs' / 'ebm' / DEMO_NAME):
        cfg = Config.fromfile(str(path))
        cfg.work_dir = str(tmp_path / path.stem)
        assert cfg.test_dataloader.dataset.pipeline
        Runner.from_cfg(cfg)
    # what the empty evaluator is for
    cfg.test_evaluator = None
    with pytest.raises(ValueError, match='test_dataloader, test_cfg, and test_evaluator should'):
        Runner.from_cfg(cfg)


def test_inference_model_by_name_restores(deit_checkpoint, wide_photos):
    checkpoint, _ = deit_checkpoint
    photo = str(sorted(wide_photos.glob('*.png'))[0])
    denoise = dict(type='DenoisingCorruption')
    with pytest.raises(ValueError, match='no weights are published for this model yet'):
        inference_model(DEIT_MIXED, photo, corruption=denoise)
    result = inference_model(DEIT_MIXED, photo, pretrained=str(checkpoint), corruption=denoise)
    assert result['clean'].shape == (224, 224, 3)  # the config's test crop
    assert result['restorations']['denoising']['chain'].shape == (3, 224, 224, 3)


def test_tools_test_refuses_pretraining_configs():
    spec = importlib.util.spec_from_file_location('test_tool', ROOT / 'tools' / 'test.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    demo = str(ROOT / 'configs' / 'ebm' / DEMO_NAME)
    with pytest.raises(SystemExit, match='is a pretraining config: its test pipeline serves'):
        tool.build_config(tool.parse_args([demo, 'iter_400.pth']))
