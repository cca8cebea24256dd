"""Restore corrupted images with a pretrained energy model, as mmpretrain's inferencers do.

The computation is :mod:`mmpretrain_ebm.visualization.restoration_chain`'s (the training hook
and ``tools/visualization/vis_restoration.py`` draw the same chains): each image is resized
(short edge) and center-cropped to ``img_size``, corrupted with a fixed seed, normalized by the
model's data preprocessor and restored in N steps of Eq. 4.
"""

import copy
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Union

import cv2
import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.model import BaseModel
from mmpretrain.apis.base import BaseInferencer
from mmpretrain.registry import TRANSFORMS

from ..visualization.restoration_chain import (
    RestorationChain,
    compute_restoration_chain,
    draw_restoration_chains,
    find_corruptions,
    find_crop_size,
    number_repeated_corruptions,
    seeded_rng,
)
from .inputs import (
    ImageType,
    InputType,
    _type_name,
    image_name,
    inference_pipeline,
    inputs_to_list,
    load_image,
    model_channels,
    split_loading,
)
from .model import _describe, model_with_checkpoint


class OutputsExistError(FileExistsError):
    """Figures that a call would replace exist (``paths``); nothing was written."""

    def __init__(self, paths: List[str], message: str) -> None:
        super().__init__(message)
        self.paths = paths


#: Meta keys packed with each sample (the chain's image names and corruption names).
META_KEYS = ('img_path', 'corruption')


#: The file of ``combined=True``'s figure, and the gain (dB) under which it names a corruption
#: as not visibly restored.
COMBINED_FIGURE = 'restorations.png'
VISIBLE_GAIN = 1.0


def figure_file(corruption: str) -> str:
    """The file name of a corruption's figure: a ``MixedCorruption``'s chain is named after
    its parts (``'denoising/grid_mask'``), which must not become folders."""
    return corruption.replace('/', '+').replace('\\', '+') + '.png'


def _as_rgb(chain: RestorationChain) -> RestorationChain:
    """A grey chain (one channel) as RGB, for drawing."""
    if chain.images.shape[-1] != 1:
        return chain
    return RestorationChain(
        corruption=chain.corruption,
        images=np.repeat(chain.images, 3, axis=-1),
        psnr=chain.psnr,
        image_names=chain.image_names,
    )


class RestorationInferencer(BaseInferencer):
    """Corrupt images and restore them with an energy model (``EnergyRestorationAlgorithm``).

    Args:
        model: A model (``get_model``'s), a name of ``list_models('ebm*')``, a config file or
            a ``Config``.
        pretrained: A checkpoint path, loaded strictly. ``True`` (default): the published
            weights of a name (ours have none yet: ``ValueError``), a config's ``load_from``,
            a model's own weights; ``False``: untrained (name, config) or as it is (model).
        device: Where to run (default: the model's device, CPU for a name or config).

    Images are loaded and transformed by the config's test pipeline (or its
    ``inference_pipeline``): its loading transform's ``color_type`` (a grey model reads grey
    images), then its transforms with the corruption inserted before packing.

    Call it with images (paths, HxW grey or HxWx3 BGR arrays, folders, or a list of them) and:

    - ``corruption``: a corruption transform config (``dict(type='DenoisingCorruption')``),
      a list of them, or ``None`` for each corruption of the config's training pipeline (each
      part of a ``MixedCorruption``);
    - ``img_size``: square side (px) that the test pipeline's ``ResizeEdge`` and
      ``CenterCrop`` take (default: its own, the training crop);
    - ``seed``: seed of the corruptions. One random stream runs through the images in the
      order given (as in the training hook's drawings): the same seed with the same inputs in
      the same order gives the same corrupted images; an image's corruption depends on the
      images before it in the call;
    - ``batch_size``: images restored at once;
    - ``show`` / ``out_dir``: show, or write as ``<out_dir>/<corruption>.png``, one figure per
      corruption (rows: images; columns: corrupted, step 1..N, clean; PSNR under each image);
      existing files are kept unless ``overwrite``; ``title`` heads each figure after the
      corruption's name. ``combined=True``: one figure of every corruption instead,
      ``<out_dir>/restorations.png``, each corruption's mean gain beside its name and a title
      line naming those under 1 dB (as the training hook draws).

    Returns one dict per image: ``img_path`` (``None`` for an array), ``clean`` (uint8 RGB
    HxWx3, HxWx1 for a grey model) and ``restorations``: ``{corruption: {'chain': uint8
    [N + 1, H, W, C] (x0, the corrupted image, to xN), 'psnr': float [N + 1] (dB against
    clean, peak 255)}}``. A ``MixedCorruption`` names its chain after the parts it drew
    (``'denoising/grid_mask'``); its figure file is ``denoising+grid_mask.png``.
    With ``return_datasamples=True``: the :class:`RestorationChain` of each corruption (all
    images).
    """

    visualize_kwargs = {'show', 'wait_time', 'out_dir', 'overwrite', 'title', 'combined'}

    def __init__(
        self,
        model: Union[BaseModel, str, Config],
        pretrained: Union[bool, str] = True,
        device: Union[str, torch.device, None] = None,
    ) -> None:
        if isinstance(pretrained, (str, Path)):
            self.title = Path(pretrained).name
        else:
            self.title = '' if isinstance(model, BaseModel) else Path(_describe(model)).stem
        model = model_with_checkpoint(model, pretrained)
        if not callable(getattr(model, 'restore', None)):
            raise TypeError(
                f'{type(model).__name__} cannot restore images: RestorationInferencer needs an '
                'energy model (EnergyRestorationAlgorithm, a pretraining config)'
            )
        if device is not None:
            model.to(device)
        model.eval()
        self.model = model
        self.config = getattr(model, '_config', None)
        self.pipeline = self._init_pipeline(self.config)
        self.visualizer = None

    def _init_pipeline(self, cfg: Optional[Config]) -> Callable:
        """Loading as the config's test pipeline (or ``inference_pipeline``) says
        (:func:`load_image`); its transforms after loading are built per corruption
        (:meth:`transforms`). Without a config (or a pipeline in it): colour images, resized
        and center-cropped to ``img_size``."""
        pipeline = inference_pipeline(cfg)
        if pipeline is None:
            pipeline = [
                dict(type='LoadImageFromFile'),
                dict(type='ResizeEdge', scale=None, edge='short', backend='pillow',
                     interpolation='bicubic'),
                dict(type='CenterCrop', crop_size=None),
                dict(type='PackInputs'),
            ]  # fmt: skip
        self.load_kwargs, self.test_transforms = split_loading(pipeline, model_channels(self.model))
        return self.load

    def load(self, image: ImageType, index: int = 0) -> dict:
        """``image`` loaded as the config says (:func:`load_image`)."""
        return load_image(image, index, **self.load_kwargs)

    def transforms(self, corruption: dict, img_size: int) -> List[dict]:
        """The test pipeline after loading, as it is for its own crop size; for another
        ``img_size``, with ``ResizeEdge``'s scale and ``CenterCrop``'s crop set to it (both
        added where it has neither). ``corruption`` comes before the packing (which keeps
        ``img_path`` and ``corruption``)."""
        try:
            as_it_is = find_crop_size(self.test_transforms) == img_size
        except ValueError:  # no crop: resize and crop to img_size
            as_it_is = False
        transforms, sized = [], as_it_is
        for cfg in self.test_transforms:
            cfg = copy.deepcopy(cfg)
            kind = _type_name(cfg)
            if kind == 'ResizeEdge' and not as_it_is:
                cfg['scale'], sized = img_size, True
            elif kind == 'CenterCrop' and not as_it_is:
                cfg['crop_size'], sized = img_size, True
            if kind != 'PackInputs':
                transforms.append(cfg)
        if not sized:
            transforms += [
                dict(type='ResizeEdge', scale=img_size, edge='short', backend='pillow',
                     interpolation='bicubic'),
                dict(type='CenterCrop', crop_size=img_size),
            ]  # fmt: skip
        return transforms + [corruption, dict(type='PackInputs', meta_keys=META_KEYS)]

    # ------------------------------------------------------------------ defaults of a call
    def default_corruptions(self) -> List[dict]:
        """The corruptions of the config's training pipeline."""
        if self.config is None or self.config.get('train_dataloader') is None:
            raise ValueError(
                'the model carries no config with a training pipeline (build it with '
                'get_model): pass corruption=dict(type=...)'
            )
        return find_corruptions(self.config.train_dataloader.dataset.pipeline)

    def default_img_size(self) -> int:
        """The crop side of the config's test (or inference) pipeline, else of its training
        pipeline."""
        if self.config is None:
            raise ValueError('the model carries no config (build it with get_model): pass img_size')
        pipelines = [inference_pipeline(self.config)]
        if self.config.get('train_dataloader') is not None:
            pipelines.append(self.config.train_dataloader.dataset.get('pipeline'))
        for pipeline in pipelines:
            if pipeline is not None:
                try:
                    return find_crop_size(pipeline)
                except ValueError:
                    continue
        raise ValueError('cannot infer the image size from the config: pass img_size')

    # ------------------------------------------------------------------ the workflow
    def __call__(
        self,
        inputs: InputType,
        return_datasamples: bool = False,
        batch_size: int = 8,
        corruption: Union[None, dict, Sequence[dict]] = None,
        img_size: Optional[int] = None,
        seed: int = 0,
        **kwargs,
    ):
        """Restore ``inputs``; see the class docstring for the arguments and the results."""
        _, _, visualize_kwargs, _ = self._dispatch_kwargs(**kwargs)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'batch_size must be an int >= 1, got {batch_size!r}')
        corruptions = self._corruptions(corruption)
        img_size = self.default_img_size() if img_size is None else img_size
        if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 1:
            raise ValueError(f'img_size must be an int >= 1 (px), got {img_size!r}')
        images = self._inputs_to_list(inputs)
        names = [image_name(image, index) for index, image in enumerate(images)]
        chains = [
            self.forward(self.preprocess(images, c, img_size, seed), names, batch_size)
            for c in corruptions
        ]
        number_repeated_corruptions(chains)
        visualization = self.visualize(images, chains, **visualize_kwargs)
        return self.postprocess(chains, visualization, return_datasamples, images=images)

    def _corruptions(self, corruption) -> List[dict]:
        if corruption is None:
            return self.default_corruptions()
        corruptions = [corruption] if isinstance(corruption, dict) else list(corruption)
        if not corruptions or not all(isinstance(c, dict) and 'type' in c for c in corruptions):
            raise ValueError(
                'corruption must be a transform config dict(type=...) or a list of them, '
                f'got {corruption!r}'
            )
        return [copy.deepcopy(dict(c)) for c in corruptions]

    def _inputs_to_list(self, inputs: InputType) -> list:
        return inputs_to_list(inputs)

    def preprocess(self, images: list, corruption: dict, img_size: int, seed: int) -> list:
        """Load and transform every image by the test pipeline with the corruption (one
        seeded stream, in order): packed samples with ``[clean, corrupted]`` inputs."""
        pipeline = Compose([TRANSFORMS.build(t) for t in self.transforms(corruption, img_size)])
        samples = []
        with seeded_rng(seed):
            for index, image in enumerate(images):
                results = self.pipeline(image, index)
                try:
                    sample = pipeline(results)
                except Exception as err:
                    raise ValueError(
                        f'{image_name(image, index)}: cannot apply {corruption["type"]} at '
                        f'{img_size} px: {err}'
                    ) from err
                if not isinstance(sample['inputs'], list) or len(sample['inputs']) != 2:
                    raise ValueError(
                        f'{corruption["type"]} is not a corruption: it must turn an image into '
                        'two views [clean, corrupted] (the *Corruption transforms)'
                    )
                samples.append(sample)
        return samples

    @torch.no_grad()
    def forward(self, samples: list, image_names: List[str], batch_size: int) -> RestorationChain:
        """Restore the samples ``batch_size`` at a time: one chain over all of them."""
        names = sorted({sample['data_samples'].metainfo['corruption'] for sample in samples})
        parts = []
        for start in range(0, len(samples), batch_size):
            batch = samples[start : start + batch_size]
            data = self.model.data_preprocessor(default_collate(batch), False)
            clean, corrupted = data['inputs']
            parts.append(
                compute_restoration_chain(
                    self.model,
                    clean,
                    corrupted,
                    '/'.join(names),
                    image_names[start : start + batch_size],
                )
            )
        return RestorationChain(
            corruption=parts[0].corruption,
            images=np.concatenate([p.images for p in parts]),
            psnr=np.concatenate([p.psnr for p in parts]),
            image_names=image_names,
        )

    def visualize(
        self,
        images: list,
        chains: List[RestorationChain],
        show: bool = False,
        wait_time: float = 0,
        out_dir: Optional[str] = None,
        overwrite: bool = False,
        title: Optional[str] = None,
        combined: bool = False,
    ) -> Optional[List[np.ndarray]]:
        """One figure per corruption (uint8 RGB), or one of them all (``combined``), shown
        and/or written to ``out_dir``."""
        if not show and out_dir is None:
            return None
        title = self.title if title is None else title
        if combined:
            rgb = [_as_rgb(c) for c in chains]
            figures = [draw_restoration_chains(rgb, title=title or None, min_gain=VISIBLE_GAIN)]
            names = [COMBINED_FIGURE]
        else:
            figures = [
                draw_restoration_chains(
                    [_as_rgb(c)], title=f'{c.corruption} - {title}' if title else None
                )
                for c in chains
            ]
            names = [figure_file(chain.corruption) for chain in chains]
        if out_dir is not None:
            paths = [Path(out_dir) / name for name in names]
            existing = [str(path) for path in paths if path.exists()]
            if existing and not overwrite:
                raise OutputsExistError(
                    existing,
                    f'{existing} exist; pass overwrite=True to replace them, or choose another '
                    'out_dir',
                )
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            for figure, path in zip(figures, paths):
                if not cv2.imwrite(str(path), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR)):
                    raise OSError(f'could not write {path}')
        if show:
            from mmengine.visualization import Visualizer

            if self.visualizer is None:
                self.visualizer = Visualizer(name='restoration_inferencer')
            for figure, name in zip(figures, names):
                self.visualizer.show(figure, win_name=Path(name).stem, wait_time=wait_time)
        return figures

    def postprocess(
        self,
        chains: List[RestorationChain],
        visualization: Optional[List[np.ndarray]],
        return_datasamples: bool = False,
        images: Sequence[ImageType] = (),
    ):
        """Per image: ``img_path``, ``clean`` and each corruption's ``chain`` and ``psnr``."""
        if return_datasamples:
            return chains
        results = []
        for index, image in enumerate(images):
            results.append(
                dict(
                    img_path=image if isinstance(image, str) else None,
                    clean=chains[0].images[index, -1],
                    restorations={
                        c.corruption: dict(chain=c.images[index, :-1], psnr=c.psnr[index])
                        for c in chains
                    },
                )
            )
        return results
