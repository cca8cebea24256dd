"""``inference_model`` that knows our energy models, and inferencers that read images as the
config says.

mmpretrain's ``inference_model`` picks an inferencer from the task of a model-zoo entry in a
table of its own (mmpretrain 1.2 offers no registry or hook for another inferencer), so it has
none for a model built from a config, nor for our pretraining algorithm. Ours, under our own
name (``from mmpretrain_ebm.apis import inference_model``; importing :mod:`mmpretrain_ebm`
leaves ``mmpretrain.inference_model`` as it is), picks by the model's type: an
``EnergyRestorationAlgorithm`` gets :class:`RestorationInferencer`, an ``ImageClassifier``
(e.g. one fine-tuned from our configs) :class:`ClassifierInferencer`, anything else
mmpretrain's own choice.

mmpretrain's inferencers read every image as colour; ours (:class:`FeatureExtractor`,
:class:`ClassifierInferencer`, :class:`RestorationInferencer`) load with the ``color_type``
of the config's test pipeline (or ``inference_pipeline``), so a grey model reads grey images.
"""

from inspect import signature
from pathlib import Path
from typing import Union

import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmpretrain.apis import FeatureExtractor as MMPretrainFeatureExtractor
from mmpretrain.apis import ImageClassificationInferencer
from mmpretrain.apis.model import ModelHub
from mmpretrain.apis.model import inference_model as mmpretrain_inference_model

from .inputs import ConfigPipelineMixin
from .model import model_with_checkpoint
from .restoration import RestorationInferencer

ENERGY_MODEL = 'EnergyRestorationAlgorithm'
CLASSIFIER = 'ImageClassifier'


def _model_type(model) -> str:
    """The registered type of a model, or of the model a name or config builds."""
    if isinstance(model, BaseModel):
        return type(model).__name__
    if isinstance(model, Config):
        config = model
    elif isinstance(model, (str, Path)) and str(model).endswith('.py'):
        config = Config.fromfile(str(model))
    else:
        config = ModelHub.get(str(model)).config
    kind = config.model.get('type', '')
    return kind if isinstance(kind, str) else getattr(kind, '__name__', str(kind))


def inference_model(model, *args, **kwargs):
    """Run the inferencer of ``model``'s kind on the inputs; return the first result.

    Args:
        model: A model, a name of ``list_models()``, a config file or a ``Config``.
        *args: The inputs (an image path, array or folder, or a list of them).
        **kwargs: Arguments of the inferencer's constructor (``pretrained``, ``device``) and
            of its call (e.g. ``corruption`` for an energy model).
    """
    kind = _model_type(model)
    inferencer_type = {
        ENERGY_MODEL: RestorationInferencer,
        CLASSIFIER: ClassifierInferencer,
    }.get(kind)
    if inferencer_type is None:
        return mmpretrain_inference_model(model, *args, **kwargs)
    init_kwargs = {
        k: kwargs.pop(k) for k in list(kwargs) if k in signature(inferencer_type).parameters
    }
    return inferencer_type(model, **init_kwargs)(*args, **kwargs)[0]


class ClassifierInferencer(ConfigPipelineMixin, ImageClassificationInferencer):
    """mmpretrain's ``ImageClassificationInferencer`` with the checkpoint loaded strictly
    (:func:`get_model`) and images read as the config's test pipeline (or
    ``inference_pipeline``) says: a grey classifier reads grey images."""

    def __init__(
        self,
        model: Union[BaseModel, str, Config],
        pretrained: Union[bool, str] = True,
        device: Union[str, torch.device, None] = None,
        classes=None,
        **kwargs,
    ) -> None:
        model = model_with_checkpoint(model, pretrained, **kwargs)
        super().__init__(model, pretrained=False, device=device, classes=classes)


class FeatureExtractor(ConfigPipelineMixin, MMPretrainFeatureExtractor):
    """mmpretrain's ``FeatureExtractor`` (images in, ``model.extract_feat`` out, through the
    config's test pipeline) with the checkpoint loaded strictly (:func:`get_model`), images
    read with the pipeline's ``color_type`` (a grey model reads grey images) and a folder's
    images in a fixed order (sorted by path)."""

    def __init__(
        self,
        model: Union[BaseModel, str, Config],
        pretrained: Union[bool, str] = True,
        device: Union[str, torch.device, None] = None,
        **kwargs,
    ) -> None:
        model = model_with_checkpoint(model, pretrained, **kwargs)
        if getattr(model, '_config', None) is None:
            raise ValueError(
                f'{type(model).__name__} carries no config (its test pipeline): build it with '
                'get_model(config or name)'
            )
        super().__init__(model, pretrained=False, device=device)


__all__ = ['ClassifierInferencer', 'FeatureExtractor', 'inference_model']
