"""Images in, samples out: the inputs of every inferencer of :mod:`mmpretrain_ebm.apis`.

Paths, folders and arrays become a list of images; each is loaded as the model's config says
(the loading transform of its test or inference pipeline, grey for a one-channel model) and
transformed by the rest of that pipeline.
"""

from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from mmcv.image import imread
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmpretrain.registry import TRANSFORMS

from .model import _describe

#: File suffixes read as images when a folder is given.
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.webp', '.tif', '.tiff')

ImageType = Union[str, Path, np.ndarray]
InputType = Union[ImageType, Sequence[ImageType]]


def list_images(folder: Union[str, Path]) -> List[str]:
    """The image files (``IMAGE_SUFFIXES``) directly in ``folder``, sorted by path.

    Raises:
        FileNotFoundError: if the folder holds none.
    """
    folder = Path(folder)
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise FileNotFoundError(f'no images ({", ".join(IMAGE_SUFFIXES)}) in {folder}')
    return [str(p) for p in found]


def inputs_to_list(inputs: InputType) -> list:
    """Images (paths, arrays) and folders' images (``IMAGE_SUFFIXES``, sorted by path), in
    the order given."""
    items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    if not len(items):
        raise ValueError('no images given')
    images = []
    for item in items:
        if isinstance(item, (str, Path)) and Path(item).is_dir():
            images += list_images(item)
        else:
            images.append(str(item) if isinstance(item, Path) else item)
    return images


def image_name(image: ImageType, index: int) -> str:
    """A file's name, ``array<index>`` for an array."""
    return Path(image).name if isinstance(image, (str, Path)) else f'array{index}'


#: Transforms that load an image file (their ``color_type`` and ``imdecode_backend`` are used
#: to load the inferencers' inputs).
LOADING_TYPES = ('LoadImageFromFile', 'LoadImageFromFileOrSkip')
#: mmcv's ``imread`` flags an inferencer loads with.
COLOR_TYPES = ('color', 'grayscale', 'unchanged')


def _type_name(cfg: dict) -> str:
    kind = cfg.get('type', '')
    return kind if isinstance(kind, str) else getattr(kind, '__name__', str(kind))


def inference_pipeline(config: Optional[Config]) -> Optional[list]:
    """The transforms that turn a given image into a model's input: the config's
    ``inference_pipeline`` if it has one (e.g. a fine-tune config whose test dataset holds
    arrays, not files), else its test dataloader's pipeline; ``None`` without either."""
    if config is None:
        return None
    if config.get('inference_pipeline') is not None:
        return [dict(t) for t in config.inference_pipeline]
    loader = config.get('test_dataloader')
    if loader is not None and loader.get('dataset', {}).get('pipeline') is not None:
        return [dict(t) for t in loader.dataset.pipeline]
    return None


def model_channels(model) -> Optional[int]:
    """The channels that ``model``'s data preprocessor normalizes (``None``: unknown)."""
    mean = getattr(getattr(model, 'data_preprocessor', None), 'mean', None)
    return int(mean.shape[0]) if isinstance(mean, torch.Tensor) and mean.ndim >= 1 else None


def split_loading(pipeline: Sequence[dict], channels: Optional[int] = None) -> Tuple[dict, list]:
    """``(load_kwargs, rest)``: how to load (``color_type``, ``imdecode_backend`` of the
    pipeline's loading transform; without one, grey for a 1-channel model, else colour) and
    the transforms after loading.

    Raises:
        ValueError: a ``color_type`` that an inferencer cannot load with.
    """
    loads = [t for t in pipeline if _type_name(t) in LOADING_TYPES]
    rest = [dict(t) for t in pipeline if _type_name(t) not in LOADING_TYPES]
    if loads:
        color_type = loads[0].get('color_type', 'color')
        backend = loads[0].get('imdecode_backend', 'cv2')
    else:
        color_type, backend = ('grayscale' if channels == 1 else 'color'), 'cv2'
    if color_type not in COLOR_TYPES:
        raise ValueError(
            f"the pipeline's {_type_name(loads[0])} has color_type={color_type!r}; an "
            f'inferencer loads with one of {COLOR_TYPES}'
        )
    return dict(color_type=color_type, imdecode_backend=backend), rest


def _array_as(img: np.ndarray, color_type: str, name: str) -> np.ndarray:
    """An HxW, HxWx1 or HxWx3 (BGR) array as ``imread(color_type)`` gives a file of it: HxW
    for grey (colour converted as OpenCV does), HxWx3 BGR for colour."""
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] in (1, 3)):
        if img.dtype != np.uint8:
            raise ValueError(f'{name}: an image array must be uint8, got {img.dtype}')
        if color_type == 'grayscale':
            if img.ndim == 3:
                img = img[..., 0] if img.shape[2] == 1 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        elif color_type == 'color':
            if img.ndim == 2 or img.shape[2] == 1:
                img = cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2BGR)
        return img
    raise ValueError(
        f'{name}: an image array must be HxW (grey), HxWx1 or HxWx3 (BGR), got shape {img.shape}'
    )


def load_image(
    image: ImageType, index: int = 0, color_type: str = 'color', imdecode_backend: str = 'cv2'
) -> dict:
    """``results`` of mmcv's ``LoadImageFromFile(color_type=...)`` for a path (uint8 as read
    by OpenCV: HxWx3 BGR for ``'color'``, HxW for ``'grayscale'``), or for an HxW, HxWx1 or
    HxWx3 (BGR) array, converted as reading a file of it would.

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: a file that cannot be read as an image, an array of another shape, or an
            unknown ``color_type``.
    """
    if color_type not in COLOR_TYPES:
        raise ValueError(f'color_type must be one of {COLOR_TYPES}, got {color_type!r}')
    if isinstance(image, (str, Path)):
        if not Path(image).is_file():
            raise FileNotFoundError(f'{image} is neither an image file nor a folder')
        try:
            img = imread(str(image), flag=color_type, backend=imdecode_backend)
        except Exception as err:  # mmcv's decoders raise various types for broken files
            raise ValueError(f'{image} is not an image that OpenCV can read: {err}') from err
        if img is None:
            raise ValueError(f'{image} is not an image that OpenCV can read')
        path = str(image)
    elif isinstance(image, np.ndarray):
        img, path = _array_as(image, color_type, image_name(image, index)), None
    else:
        raise TypeError(
            'an image is a file path, a folder or an HxW, HxWx1 or HxWx3 (BGR) array, got '
            f'{type(image).__name__}'
        )
    return dict(img=img, img_path=path, img_shape=img.shape[:2], ori_shape=img.shape[:2])


class ConfigPipelineMixin:
    """The inputs of an mmpretrain inferencer loaded and transformed as the model's config
    says (:func:`inference_pipeline`): the loading transform's ``color_type`` (a grey model
    gets HxW images), then the transforms after it; a folder's images sorted by path.
    mmpretrain's inferencers load every image as colour and take the test pipeline after its
    loading."""

    def _init_pipeline(self, cfg: Config) -> Callable:
        pipeline = inference_pipeline(cfg)
        if pipeline is None:
            raise ValueError(
                f'the config {_describe(cfg)} has no test_dataloader pipeline nor '
                'inference_pipeline: the inferencer cannot know how to load images'
            )
        self.load_kwargs, rest = split_loading(pipeline, model_channels(self.model))
        return Compose([TRANSFORMS.build(t) for t in rest])

    def _inputs_to_list(self, inputs: InputType) -> list:
        """A folder gives its images sorted by path (mmpretrain's: every file, in listing
        order)."""
        return inputs_to_list(inputs)

    def preprocess(self, inputs: list, batch_size: int = 1):
        def load(indexed):
            index, image = indexed
            return self.pipeline(load_image(image, index, **self.load_kwargs))

        chunked = self._get_chunk_data(map(load, enumerate(inputs)), batch_size)
        yield from map(default_collate, chunked)
