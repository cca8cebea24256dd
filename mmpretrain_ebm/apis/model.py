"""Our model zoo in mmpretrain's ``ModelHub``, and strict model loading.

Importing :mod:`mmpretrain_ebm` calls :func:`register_model_index` (mmpretrain's
``ModelHub.register_model_index``, its hook for other model zoos): every model of
``model-index.yml`` (the pretraining configs of the model zoo and their fine-tuned
classifiers) can then be listed (``list_models('*ebm*')``) and built by name with
mmpretrain's ``get_model``, ``FeatureExtractor`` and inferencers, as mmpretrain's own models.
No weights are published yet: asking a model of ours for them (``pretrained=True``, the
inferencers' default) through our functions raises a ``ValueError`` that says so;
mmpretrain's own functions keep their behaviour (a warning and an untrained model).

:func:`get_model` is mmpretrain's, with the checks of bad input: the checkpoint must match the
config exactly (strict loading), an unknown name gets the closest names.
"""

import difflib
import os
from pathlib import Path
from typing import List, Optional, Union

import yaml
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.runner import load_checkpoint
from mmpretrain.apis import list_models
from mmpretrain.apis import model as mmpretrain_model
from mmpretrain.apis.model import ModelHub

#: The repository root: ``model-index.yml`` and the configs it names (source checkouts and
#: editable installs; a wheel carries neither).
REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_INDEX = REPO_ROOT / 'model-index.yml'


def no_weights_error(name: str, config: str) -> ValueError:
    """What asking a model of ours without a ``Weights`` URL for its weights raises."""
    return ValueError(
        f'{name}: no weights are published for this model yet (model-index.yml has '
        "no Weights URL); pass pretrained='path/to/checkpoint.pth', a checkpoint of "
        f'{config}, or pretrained=False for an untrained model'
    )


def _metafiles(model_index: Path) -> set:
    """The metafiles that ``model_index`` imports, as resolved paths."""
    imports = yaml.safe_load(model_index.read_text()).get('Import', [])
    return {(model_index.parent / path).resolve() for path in imports}


def _registered_from(metafiles: set) -> List[str]:
    # by metafile, not by folder: a virtual environment inside the repository holds
    # mmpretrain's own metafiles under the same root
    return sorted(
        name
        for name, info in ModelHub._models_dict.items()
        if Path(info.filepath).resolve() in metafiles
    )


def our_model_names() -> List[str]:
    """The names of ``model-index.yml``, lower case as ``ModelHub`` keys them."""
    return _registered_from(_metafiles(MODEL_INDEX))


def register_model_index(model_index: Union[str, Path] = MODEL_INDEX) -> List[str]:
    """Register ``model_index`` with mmpretrain's ``ModelHub`` (config paths relative to the
    repository root) and return the names registered; a second call registers nothing.

    Raises:
        FileNotFoundError: if ``model_index`` does not exist.
    """
    model_index = Path(model_index).resolve()
    if not model_index.is_file():
        raise FileNotFoundError(f'no model index at {model_index}')
    before = set(ModelHub._models_dict)
    if not _registered_from(_metafiles(model_index)):
        ModelHub.register_model_index(model_index, config_prefix=model_index.parent)
    return sorted(set(ModelHub._models_dict) - before)


def _closest_names(name: str, count: int = 5) -> List[str]:
    names = list_models()
    close = difflib.get_close_matches(name.lower(), names, n=count, cutoff=0.5)
    return close or [n for n in names if name.lower() in n][:count]


def _checkpoint_of(model: Union[str, Config], pretrained: Union[bool, str]) -> Optional[str]:
    """The checkpoint path that ``pretrained`` asks for, ``None`` for none."""
    if pretrained is False or pretrained is None:
        return None
    if isinstance(pretrained, (str, os.PathLike)):
        return str(pretrained)
    if pretrained is not True:
        raise TypeError(f'pretrained must be a bool or a checkpoint path, got {pretrained!r}')
    if isinstance(model, str) and not model.endswith('.py'):
        info = ModelHub._models_dict[model.lower()]
        if info.weights is None:  # mmpretrain's get_model would warn and build it untrained
            raise no_weights_error(info.name, info.config)
        return info.weights
    config = model if isinstance(model, Config) else Config.fromfile(str(model))
    if config.get('load_from'):
        return config.load_from
    raise ValueError(
        f'pretrained=True but the config {_describe(model)} names no checkpoint (load_from is '
        "empty); pass pretrained='path/to/checkpoint.pth' or pretrained=False"
    )


def _describe(model) -> str:
    if isinstance(model, Config):
        return model.filename or 'Config object'
    return str(model)


def load_matching_checkpoint(model: BaseModel, checkpoint: str, what: str) -> dict:
    """Load ``checkpoint`` into ``model`` strictly (every key, every shape); on a mismatch the
    model keeps its weights.

    Raises:
        FileNotFoundError: if the file does not exist (a local path).
        ValueError: if the checkpoint does not match the model built from ``what``.
    """
    if '://' not in checkpoint and not Path(checkpoint).is_file():
        raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
    before = {key: value.clone() for key, value in model.state_dict().items()}
    try:
        return load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    except RuntimeError as err:
        model.load_state_dict(before)  # torch copied the matching tensors before raising
        raise ValueError(
            f'checkpoint {checkpoint} does not match the model of {what} (left unchanged): {err}'
        ) from err


def get_model(
    model: Union[str, Config, os.PathLike],
    pretrained: Union[bool, str] = False,
    device=None,
    **kwargs,
) -> BaseModel:
    """mmpretrain's ``get_model`` (a model name, a config path or a ``Config``) with the
    checkpoint loaded strictly.

    Args:
        model: A name of ``list_models()``, a config file or a ``Config``.
        pretrained: A checkpoint path (or URL); ``True`` for the published weights (a model
            of ours has none yet: ``ValueError``) or the config's ``load_from``; ``False``
            for an untrained model.
        device: Where to put the model (default: CPU).
        **kwargs: Overrides of the config's ``model`` (mmpretrain's ``get_model``).

    Raises:
        ValueError: an unknown name (with the closest names), a checkpoint that does not
            match the config, or ``pretrained=True`` without weights.
    """
    if isinstance(model, os.PathLike):
        model = str(model)
    if isinstance(model, str) and not model.endswith('.py'):
        if model.lower() not in list_models():
            raise ValueError(
                f'Failed to find model "{model}": no such name in mmpretrain.list_models(); '
                f'closest names: {_closest_names(model)}'
            )
    elif isinstance(model, str) and not Path(model).is_file():
        raise FileNotFoundError(f'config {model} does not exist')
    checkpoint = _checkpoint_of(model, pretrained)
    built = mmpretrain_model.get_model(model, pretrained=False, **kwargs)
    if checkpoint is not None:
        what = built._metainfo.name if built._metainfo is not None else _describe(model)
        loaded = load_matching_checkpoint(built, checkpoint, what)
        # as mmpretrain's get_model: class names saved by the training run
        dataset_meta = loaded.get('meta', {}).get('dataset_meta')
        if dataset_meta:
            built._dataset_meta = dataset_meta
    if device is not None:
        built.to(device)
    return built.eval()


def model_with_checkpoint(
    model: Union[BaseModel, str, Config], pretrained: Union[bool, str], **kwargs
) -> BaseModel:
    """``model`` itself with ``pretrained`` (a path) loaded strictly into it, or
    :func:`get_model` of a config or name (``kwargs`` go to it)."""
    if isinstance(model, BaseModel):
        if isinstance(pretrained, (str, Path)):
            load_matching_checkpoint(model, str(pretrained), type(model).__name__)
        return model
    return get_model(model, pretrained=pretrained, **kwargs)
