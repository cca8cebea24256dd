"""Restoration chains of fixed images: compute them with a model and draw them as a figure.

A chain is the corrupted image x~0, the restored images x~1..x~N of Eq. 4 and the clean image
x, shown left to right like the paper's Figures 1 (right), 3 and 4. Shared by
:class:`~mmpretrain_ebm.engine.RestorationVisualizationHook` and
``tools/visualization/vis_restoration.py``.
"""

import copy
import random
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mmcv.transforms import Compose
from mmengine.dataset import default_collate
from mmengine.model import is_model_wrapper
from mmpretrain.registry import TRANSFORMS
from torch import Tensor, nn

#: Transforms named ``*Corruption`` turn ``results['img']`` into ``[clean, corrupted]``.
CORRUPTION_SUFFIX = 'Corruption'
#: The transform that samples one of several corruptions per image.
MIXED_CORRUPTION = 'MixedCorruption'
#: Training-pipeline transforms whose ``scale`` gives the crop side the model sees.
CROP_TRANSFORMS = ('RandomResizedCrop', 'RandomCrop', 'CenterCrop', 'Resize')


@dataclass
class RestorationChain:
    """One corruption applied to B images and restored in N steps.

    Attributes:
        corruption: Name of the corruption (the transform's ``results['corruption']``).
        images: uint8 RGB [B, N + 2, H, W, 3]: corrupted x~0, steps x~1..x~N, clean x.
        psnr: PSNR in dB against the clean image, [B, N + 1] for x~0..x~N (peak 255,
            computed on the uint8 images shown).
        image_names: The B source file names.
    """

    corruption: str
    images: np.ndarray
    psnr: np.ndarray
    image_names: List[str]

    @property
    def num_steps(self) -> int:
        return self.images.shape[1] - 2

    @property
    def changed(self) -> np.ndarray:
        """[B] bool: the images the corruption changed (x~0 differs from x as shown, so its
        PSNR is finite; e.g. colorization leaves a grey photograph as it is)."""
        return np.isfinite(self.psnr[:, 0])

    def mean_psnr(self) -> np.ndarray:
        """[N + 1] mean PSNR (dB) of x~0..x~N over the images the corruption changed (NaN
        if it changed none)."""
        changed = self.psnr[self.changed]
        return changed.mean(axis=0) if len(changed) else np.full(self.psnr.shape[1], np.nan)


def _transform_type(cfg: dict) -> str:
    kind = cfg.get('type', '')
    return kind if isinstance(kind, str) else getattr(kind, '__name__', str(kind))


def find_corruptions(pipeline: Sequence[dict]) -> List[dict]:
    """The corruption configs of a training pipeline; a ``MixedCorruption`` gives its parts.

    Raises:
        ValueError: if the pipeline holds no ``*Corruption`` transform.
    """
    for step in pipeline:
        kind = _transform_type(step)
        if kind == MIXED_CORRUPTION:
            return [copy.deepcopy(dict(part)) for part in step['corruptions']]
        if kind.endswith(CORRUPTION_SUFFIX):
            return [copy.deepcopy(dict(step))]
    kinds = [_transform_type(step) for step in pipeline]
    raise ValueError(f'the pipeline has no *{CORRUPTION_SUFFIX} transform: {kinds}')


def find_crop_size(pipeline: Sequence[dict]) -> int:
    """The square side (px) that the training pipeline crops images to.

    Raises:
        ValueError: if no crop transform with a square ``scale``/``crop_size`` is found.
    """
    for step in pipeline:
        if _transform_type(step) not in CROP_TRANSFORMS:
            continue
        size = step.get('scale', step.get('crop_size'))
        if isinstance(size, int):
            return size
        if isinstance(size, (tuple, list)) and len(size) == 2 and size[0] == size[1]:
            return int(size[0])
    raise ValueError(
        'cannot infer the image size: the pipeline has no '
        f'{"/".join(CROP_TRANSFORMS)} with a square size; pass img_size'
    )


def build_chain_pipeline(corruption: dict, img_size: int) -> Compose:
    """Load, resize the short edge, center-crop to ``img_size``, corrupt and pack."""
    return Compose(
        [
            TRANSFORMS.build(cfg)
            for cfg in (
                dict(type='LoadImageFromFile'),
                dict(
                    type='ResizeEdge',
                    scale=img_size,
                    edge='short',
                    backend='pillow',
                    interpolation='bicubic',
                ),
                dict(type='CenterCrop', crop_size=img_size),
                corruption,
                dict(type='PackInputs', meta_keys=('img_path', 'corruption')),
            )
        ]
    )


@contextmanager
def seeded_rng(seed: int) -> Iterator[None]:
    """Seed Python, NumPy and torch's CPU generator inside, and restore their states on exit.

    The corrupted images are then the same at every call, and the caller's (the training
    run's) random streams are left as they were. CUDA generators are not touched (the
    corruptions draw on the CPU): ``torch.manual_seed`` would reseed every GPU's generator,
    or queue that reseeding until CUDA starts, beyond the reach of the restore.
    """
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def load_corrupted_batch(
    image_paths: Sequence[str],
    corruption: dict,
    img_size: int,
    data_preprocessor: nn.Module,
    seed: int = 0,
) -> Tuple[Tensor, Tensor, str]:
    """Corrupt images deterministically and normalize them as the model sees them.

    Returns:
        clean and corrupted batches [B, 3, img_size, img_size] (normalized, on the data
        preprocessor's device) and the corruption's name.
    """
    if not image_paths:
        raise ValueError('no images given to draw restoration chains of')
    pipeline = build_chain_pipeline(corruption, img_size)
    with seeded_rng(seed):
        samples = [pipeline(dict(img_path=str(path))) for path in image_paths]
    data = data_preprocessor(default_collate(samples), False)
    inputs = data['inputs']
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
        raise ValueError(
            f'corruption {_transform_type(corruption)} must yield two views '
            '[clean, corrupted]; the data preprocessor returned '
            f'{type(inputs).__name__}'
        )
    names = {
        sample.metainfo.get('corruption', _transform_type(corruption))
        for sample in data['data_samples']
    }
    return inputs[0], inputs[1], '/'.join(sorted(names))


def to_uint8_images(batch: Tensor, mean: Tensor, std: Tensor) -> np.ndarray:
    """Undo normalization: [B, 3, H, W] (RGB, normalized) -> uint8 RGB [B, H, W, 3]."""
    pixels = batch.detach().float() * std.view(1, -1, 1, 1) + mean.view(1, -1, 1, 1)
    return pixels.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def psnr(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """PSNR in dB (peak 255) of uint8 images [..., H, W, 3] against ``reference``."""
    error = (images.astype(np.float64) - reference.astype(np.float64)) ** 2
    mse = error.reshape(*error.shape[:-3], -1).mean(axis=-1)
    with np.errstate(divide='ignore'):
        return 10 * np.log10(255.0**2 / mse)


def step_alignment(chain: 'RestorationChain', step: int = 1) -> Dict[str, float]:
    """How step ``step`` moves the images relative to what restoring them needs.

    With d = x~n - x~(n-1) (the step) and r = x - x~(n-1) (what is left to restore), both over
    the uint8 images shown, per image: ``cos`` = <d, r> / (|d| |r|) and ``ratio`` = |d| / |r|;
    since |r - d|^2 = |r|^2 (1 - 2 ratio cos + ratio^2), the step raises an image's PSNR
    exactly when its cos > ratio / 2. ``shift`` is the share of |d|^2 in d's per-image,
    per-channel mean (a uniform tint or brightness change). Returns means over the images.
    """
    if not 1 <= step <= chain.num_steps:
        raise ValueError(f'step must be in 1..{chain.num_steps}, got {step!r}')
    images = chain.images.astype(np.float64)
    before, after, clean = images[:, step - 1], images[:, step], images[:, -1]
    d = (after - before).reshape(len(images), -1, 3)
    r = (clean - before).reshape(len(images), -1, 3)
    d_norm = np.sqrt((d**2).sum(axis=(1, 2)))
    r_norm = np.sqrt((r**2).sum(axis=(1, 2)))
    with np.errstate(divide='ignore', invalid='ignore'):
        cos = (d * r).sum(axis=(1, 2)) / (d_norm * r_norm)
        ratio = d_norm / r_norm
        shift = d.shape[1] * (d.mean(axis=1) ** 2).sum(axis=1) / d_norm**2
    return dict(cos=float(cos.mean()), ratio=float(ratio.mean()), shift=float(shift.mean()))


def unwrap_model(model: nn.Module) -> nn.Module:
    """The algorithm inside a distributed wrapper, or ``model`` itself."""
    return model.module if is_model_wrapper(model) else model


def compute_restoration_chain(
    model: nn.Module, clean: Tensor, corrupted: Tensor, corruption: str, image_names: Sequence[str]
) -> RestorationChain:
    """Restore ``corrupted`` with ``model.restore`` in eval mode and collect the chain."""
    model = unwrap_model(model)
    was_training = model.training
    model.eval()
    try:
        steps = model.restore(corrupted)
    finally:
        model.train(was_training)
    mean, std = model.data_preprocessor.mean, model.data_preprocessor.std
    frames = [to_uint8_images(x, mean, std) for x in [*steps, clean]]
    images = np.stack(frames, axis=1)
    return RestorationChain(
        corruption=corruption,
        images=images,
        psnr=psnr(images[:, :-1], images[:, -1:]),
        image_names=list(image_names),
    )


def restoration_chains(
    model: nn.Module,
    image_paths: Sequence[str],
    corruptions: Sequence[dict],
    img_size: int,
    seed: int = 0,
) -> List[RestorationChain]:
    """One :class:`RestorationChain` per corruption config, all on the same images."""
    preprocessor = unwrap_model(model).data_preprocessor
    names = [str(path).replace('\\', '/').rsplit('/', 1)[-1] for path in image_paths]
    chains = []
    for corruption in corruptions:
        clean, corrupted, name = load_corrupted_batch(
            image_paths, corruption, img_size, preprocessor, seed
        )
        chains.append(compute_restoration_chain(model, clean, corrupted, name, names))
    number_repeated_corruptions(chains)
    return chains


def number_repeated_corruptions(chains: Sequence[RestorationChain]) -> None:
    """Number the chains of a repeated corruption name in order, in place (e.g. grid masks
    of two cell sizes: ``grid_mask_1``, ``grid_mask_2``), so that names stay unique."""
    counts = Counter(chain.corruption for chain in chains)
    for name in (name for name, count in counts.items() if count > 1):
        for number, chain in enumerate((c for c in chains if c.corruption == name), 1):
            chain.corruption = f'{name}_{number}'


def mean_psnr(chains: Sequence[RestorationChain]) -> Dict[str, float]:
    """Scalars ``<corruption>/psnr_corrupted`` and ``<corruption>/psnr_step{n}`` (dB), means
    over the images each corruption changed (:meth:`RestorationChain.mean_psnr`)."""
    scalars = {}
    for chain in chains:
        average = chain.mean_psnr()
        scalars[f'{chain.corruption}/psnr_corrupted'] = float(average[0])
        for step in range(1, chain.num_steps + 1):
            scalars[f'{chain.corruption}/psnr_step{step}'] = float(average[step])
    return scalars


def _figure_to_array(figure: Figure) -> np.ndarray:
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def draw_restoration_chains(
    chains: Sequence[RestorationChain],
    title: Optional[str] = None,
    cell_inches: float = 1.3,
    dpi: int = 100,
    min_gain: Optional[float] = None,
) -> np.ndarray:
    """Draw chains as a grid: one row per (corruption, image), columns corrupted, step 1..N,
    clean; each restored cell is labelled with its PSNR. With ``min_gain`` (dB), each
    corruption's label also gives its mean gain of step N over x~0 and a line under the title
    names the corruptions that gained less (not visibly restored), as the demo's summary
    does. Returns uint8 RGB [H, W, 3]."""
    if not chains:
        raise ValueError('no restoration chains to draw')
    num_cols = chains[0].images.shape[1]
    if any(chain.images.shape[1] != num_cols for chain in chains):
        raise ValueError('all chains must have the same number of steps')
    headers = ['corrupted'] + [f'step {n}' for n in range(1, num_cols - 1)] + ['clean']
    rows = [(chain, index) for chain in chains for index in range(chain.images.shape[0])]
    labels = {chain.corruption: chain.corruption for chain in chains}
    if min_gain is not None:
        gains = {c.corruption: c.mean_psnr()[-1] - c.mean_psnr()[0] for c in chains}
        labels = {name: f'{name}\n{gain:+.2f} dB' for name, gain in gains.items()}
        below = [name for name, gain in gains.items() if not round(gain, 2) >= min_gain]
        if below:
            line = f'not visibly restored (gain below {min_gain:+.2f} dB): ' + ', '.join(below)
            title = f'{title}\n{line}' if title else line
    title_inches = 0.35 * len(title.splitlines()) if title else 0.0
    height = cell_inches * len(rows) + 0.5 + title_inches
    figure = Figure(figsize=(cell_inches * num_cols + 0.6, height), dpi=dpi)
    axes = figure.subplots(len(rows), num_cols, squeeze=False)
    for row, (chain, index) in enumerate(rows):
        for col in range(num_cols):
            ax = axes[row, col]
            ax.imshow(chain.images[index, col], interpolation='nearest')
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(headers[col], fontsize=9)
            if col < num_cols - 1:
                ax.set_xlabel(f'{chain.psnr[index, col]:.1f} dB', fontsize=8, labelpad=1)
        if index == 0:
            axes[row, 0].set_ylabel(labels[chain.corruption], fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout(pad=0.3, h_pad=0.4, w_pad=0.2, rect=(0, 0, 1, 1 - title_inches / height))
    return _figure_to_array(figure)


def draw_curves(
    curves: Dict[str, Sequence[float]], title: Optional[str] = None, dpi: int = 100
) -> np.ndarray:
    """Plot per-iteration scalars, one panel per name, with a moving average over 5 % of
    the iterations over the raw values: uint8 RGB [H, W, 3]."""
    if not curves:
        raise ValueError('no curves to draw')
    figure = Figure(figsize=(3.2 * len(curves), 2.6), dpi=dpi)
    axes = figure.subplots(1, len(curves), squeeze=False)[0]
    for ax, (name, values) in zip(axes, curves.items()):
        values = np.asarray(values, dtype=float)
        steps = np.arange(1, len(values) + 1)
        window = max(1, len(values) // 20)
        ax.plot(steps, values, lw=0.6, alpha=0.35 if window > 1 else 1.0, color='C0')
        if window > 1:
            smooth = np.convolve(values, np.ones(window) / window, mode='valid')
            ax.plot(steps[window - 1 :], smooth, lw=1.4, color='C0')
        ax.set_title(name, fontsize=9)
        ax.set_xlabel('iteration', fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout(pad=0.4)
    return _figure_to_array(figure)
