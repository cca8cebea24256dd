"""``inference_model`` that knows our energy models, and a strict ``FeatureExtractor``.

mmpretrain's ``inference_model`` picks an inferencer from the task of a model-zoo entry, so it
has none for a model built from a config, nor for our pretraining algorithm. This one picks by
the model's type: an ``EnergyRestorationAlgorithm`` gets :class:`RestorationInferencer`, an
``ImageClassifier`` (e.g. one fine-tuned from our configs) mmpretrain's
``ImageClassificationInferencer``, anything else mmpretrain's own choice. Importing
:mod:`mmpretrain_ebm` puts it in place of ``mmpretrain.inference_model`` (and
``mmpretrain.apis.inference_model``), so import the package before taking the name from
mmpretrain.
"""

from inspect import signature
from pathlib import Path
from typing import Union

import mmpretrain
import mmpretrain.apis
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmpretrain.apis import FeatureExtractor as MMPretrainFeatureExtractor
from mmpretrain.apis import ImageClassificationInferencer
from mmpretrain.apis.model import ModelHub
from mmpretrain.apis.model import inference_model as mmpretrain_inference_model

from .model import get_model, model_with_checkpoint
from .restoration import RestorationInferencer, inputs_to_list

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
        CLASSIFIER: ImageClassificationInferencer,
    }.get(kind)
    if inferencer_type is None:
        return mmpretrain_inference_model(model, *args, **kwargs)
    init_kwargs = {
        k: kwargs.pop(k) for k in list(kwargs) if k in signature(inferencer_type).parameters
    }
    if inferencer_type is ImageClassificationInferencer and not isinstance(model, BaseModel):
        # mmpretrain's would load the checkpoint leniently: build it with ours
        model = get_model(
            model, pretrained=init_kwargs.pop('pretrained', True), device=init_kwargs.get('device')
        )
    return inferencer_type(model, **init_kwargs)(*args, **kwargs)[0]


class FeatureExtractor(MMPretrainFeatureExtractor):
    """mmpretrain's ``FeatureExtractor`` (images in, ``model.extract_feat`` out, through the
    config's test pipeline) with the checkpoint loaded strictly (:func:`get_model`) and a
    folder's images in a fixed order (sorted by path)."""

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

    def _inputs_to_list(self, inputs) -> list:
        """A folder gives its images sorted by path (mmpretrain's: every file, in listing
        order)."""
        return inputs_to_list(inputs)


def install_inference_model() -> None:
    """Make ``mmpretrain.inference_model`` (and ``mmpretrain.apis``'s) this module's."""
    mmpretrain.inference_model = inference_model
    mmpretrain.apis.inference_model = inference_model


__all__ = ['FeatureExtractor', 'inference_model', 'install_inference_model']
