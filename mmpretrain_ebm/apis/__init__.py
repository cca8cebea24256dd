"""Use pretrained models from Python, as every MMPretrain model (docs/api.md).

``list_models('*ebm*')`` and ``get_model(name, pretrained=PATH)`` reach our model zoo
(``model-index.yml``, registered on import); :class:`FeatureExtractor` gives backbone features
through a config's test pipeline; :class:`RestorationInferencer` corrupts and restores images;
:func:`inference_model` picks the inferencer of a model's kind (ours, beside mmpretrain's:
``from mmpretrain_ebm.apis import inference_model``).
"""

from mmpretrain.apis import list_models

from .inference import ClassifierInferencer, FeatureExtractor, inference_model
from .inputs import IMAGE_SUFFIXES, list_images, load_image
from .model import MODEL_INDEX, get_model, our_model_names, register_model_index
from .restoration import RestorationInferencer

__all__ = [
    'ClassifierInferencer',
    'FeatureExtractor',
    'IMAGE_SUFFIXES',
    'MODEL_INDEX',
    'RestorationInferencer',
    'get_model',
    'inference_model',
    'list_images',
    'list_models',
    'load_image',
    'our_model_names',
    'register_model_index',
]
