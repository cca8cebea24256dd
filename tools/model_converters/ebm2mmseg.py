"""Turn an energy-pretraining checkpoint into the backbone checkpoint of an mmseg config.

    python tools/model_converters/ebm2mmseg.py CONFIG PRETRAIN_CKPT OUT [--overwrite]
        [--cfg-options key=value ...]

PRETRAIN_CKPT is what our pretraining writes (``EnergyRestorationAlgorithm``: an mmengine
runner checkpoint whose ``state_dict`` holds ``backbone.*``, ``head.*`` and ``alpha``). OUT
keeps the ``backbone.*`` tensors without their prefix; the energy head, the step size alpha
and the optimizer and scheduler states are dropped. CONFIG is one of the UperNet configs in
``configs/benchmarks/mmsegmentation/``: its backbone is built and loads the tensors before
anything is written, and the tool fails, listing every key, unless each tensor loads:

- missing keys (the backbone has them, the checkpoint does not),
- unexpected keys (the checkpoint has them, the backbone does not),
- shape mismatches (e.g. a ViT-S checkpoint for a ViT-B config).

Two differences between a pooling and a dense backbone are expected; they are handled by
name, listed, and nothing else is let through:

- added: a dense backbone normalizes the output of every stage it hands to the decoder
  (``norm0`` .. ``norm3`` of mmpretrain's ConvNeXt and Swin), while the pretraining backbone
  only had the norm of its last stage. A stage norm absent from the checkpoint as a whole is
  written into OUT at the backbone's own initialization (what training would start from).
- dropped: the pretraining ViT (``out_type='avg_featmap'``) normalizes the pooled token that
  the energy head reads with ``ln2``; a dense ViT (``out_type='featmap'``) has no pooled
  token and does not build ``ln2``.

Position embeddings pretrained at another resolution are kept as they are; mmpretrain's
backbones interpolate them when they load (the tool checks that this load succeeds).

The checkpoint is read with ``torch.load(weights_only=True)``.
"""

import argparse
import hashlib
import os
import re
import sys
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Tuple

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import DefaultScope
from mmengine.utils import ProgressBar
from torch import nn

import mmpretrain_ebm  # also allow-lists the types that runner checkpoints hold
from mmpretrain_ebm.utils.requirements import RequirementError, require_seg

PRETRAIN_PREFIX = 'backbone.'
# A top-level output norm of a multi-stage backbone: ``norm2.weight`` (ConvNeXt, Swin).
STAGE_OUTPUT_NORM = re.compile(r'^(norm\d+)\.')
# Per backbone class, the top-level modules that act on the pooled feature only.
POOLED_FEATURE_MODULES = {'VisionTransformer': ('ln2',)}


class ConversionError(RuntimeError):
    """The checkpoint does not fit the backbone of the config; nothing was written."""


def load_pretraining_state(path: Path) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Read ``path`` with ``weights_only=True``; return its state dict and its ``meta``."""
    if not path.is_file():
        raise ConversionError(f'pretraining checkpoint {str(path)!r} does not exist')
    checkpoint = torch.load(path, map_location='cpu', weights_only=True, mmap=True)
    if not isinstance(checkpoint, dict):
        raise ConversionError(
            f'{path} holds a {type(checkpoint).__name__}, expected a dict '
            'written by mmengine (with a "state_dict" entry)'
        )
    state = checkpoint.get('state_dict', checkpoint)
    return state, checkpoint.get('meta') or {}


def extract_backbone(state: Dict[str, torch.Tensor], source: str) -> 'OrderedDict':
    """The ``backbone.*`` tensors of ``state`` without the prefix, with a progress bar.

    The module metadata (``_metadata``: per-module state-dict versions that mmpretrain's
    Swin reads when it loads) is carried over with the same prefix removed.
    """
    names = [name for name in state if name.startswith(PRETRAIN_PREFIX)]
    if not names:
        prefixes = sorted({name.split('.')[0] for name in state})
        raise ConversionError(
            f'{source} has no {PRETRAIN_PREFIX!r} tensors (top-level names: {prefixes}); '
            'expected a checkpoint written by our pretraining (EnergyRestorationAlgorithm). '
            'A checkpoint this tool already converted goes into the config as it is.'
        )
    backbone = OrderedDict()
    progress = ProgressBar(len(names), file=sys.stdout)
    for name in names:
        backbone[name[len(PRETRAIN_PREFIX) :]] = state[name].clone()
        progress.update()
    sys.stdout.write('\n')
    metadata = getattr(state, '_metadata', None)
    if metadata is not None:
        stem = PRETRAIN_PREFIX.rstrip('.')
        backbone._metadata = OrderedDict(
            (key[len(PRETRAIN_PREFIX) :] if key != stem else '', value)
            for key, value in metadata.items()
            if key == stem or key.startswith(PRETRAIN_PREFIX)
        )
    return backbone


def build_target_backbone(config: Config) -> nn.Module:
    """Build the backbone of an mmseg config without loading its pretrained weights."""
    backbone_cfg = config.model.get('backbone')
    if backbone_cfg is None:
        raise ConversionError('the config has no model.backbone')
    backbone_cfg = backbone_cfg.copy()
    backbone_cfg.init_cfg = None
    from mmseg.registry import MODELS

    # a scoped switch: the caller's default scope (e.g. 'mmpretrain') is restored afterwards
    with DefaultScope.overwrite_default_scope(config.get('default_scope', 'mmseg')):
        return MODELS.build(backbone_cfg)


def top_module(key: str) -> str:
    """``'norm2'`` for ``'norm2.weight'``."""
    return key.split('.', 1)[0]


def reconcile_dense_outputs(
    weights: 'OrderedDict', backbone: nn.Module
) -> Tuple[List[str], List[str]]:
    """Add missing stage output norms to ``weights``, drop pooled-feature modules from it.

    Both only apply to top-level modules that one side lacks as a whole (see the module
    docstring). Returns ``(added, dropped)`` key lists.
    """
    target = backbone.state_dict()
    source_modules = {top_module(key) for key in weights}
    target_modules = {top_module(key) for key in target}
    added = [
        key
        for key in target
        if STAGE_OUTPUT_NORM.match(key) and top_module(key) not in source_modules
    ]
    pooled = POOLED_FEATURE_MODULES.get(type(backbone).__name__, ())
    dropped = [
        key
        for key in weights
        if top_module(key) in pooled and top_module(key) not in target_modules
    ]
    for key in added:
        weights[key] = target[key].clone()
    for key in dropped:
        del weights[key]
    metadata = getattr(weights, '_metadata', None)
    if metadata is not None:
        target_metadata = getattr(target, '_metadata', {})
        for module in {top_module(key) for key in added}:
            if module in target_metadata:
                metadata[module] = target_metadata[module]
        for module in {top_module(key) for key in dropped}:
            metadata.pop(module, None)
    return added, dropped


def check_loads(weights: 'OrderedDict', backbone: nn.Module) -> None:
    """Load ``weights`` into ``backbone``; raise listing every missing, unexpected or
    mis-shaped key."""
    # load_state_dict's pre-hooks may rewrite tensors (position embeddings): load a copy.
    trial = OrderedDict(weights)
    if getattr(weights, '_metadata', None) is not None:
        trial._metadata = weights._metadata
    problems = []
    try:
        result = backbone.load_state_dict(trial, strict=False)
    except RuntimeError as error:  # size mismatches raise even with strict=False
        problems.append(str(error))
    else:
        if result.missing_keys:
            problems.append(
                'missing keys (in the backbone, not in the checkpoint):\n  '
                + '\n  '.join(result.missing_keys)
            )
        if result.unexpected_keys:
            problems.append(
                'unexpected keys (in the checkpoint, not in the backbone):\n  '
                + '\n  '.join(result.unexpected_keys)
            )
    if problems:
        raise ConversionError(
            f'the checkpoint does not fit {type(backbone).__name__} of the config; nothing '
            'was written.\n' + '\n'.join(problems)
        )


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an OUT that is a directory, lies under a file, or exists without
    ``overwrite``."""
    folder = next(parent for parent in out.absolute().parents if parent.exists())
    if not folder.is_dir():
        raise ConversionError(f'cannot write OUT {out}: {folder} is a file, not a folder')
    if out.is_dir():
        raise ConversionError(
            f'OUT {out} is a directory; give the checkpoint file to write, '
            f'e.g. {out / "backbone.pth"}'
        )
    if out.exists() and not overwrite:
        raise ConversionError(f'{out} exists; pass --overwrite to replace it')


def save_atomically(payload: dict, out: Path, overwrite: bool) -> None:
    """Write ``payload`` to ``out`` through a temporary file; never clobber by accident."""
    check_out(out, overwrite)  # again: OUT may have appeared during the conversion
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f'.{out.name}.', suffix='.tmp')
    os.close(handle)
    try:
        torch.save(payload, temporary)
        os.replace(temporary, out)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def sha256_prefix(path: Path, chunk: int = 1 << 22) -> str:
    """The first 8 hex digits of the file's SHA-256 (OpenMMLab's checkpoint-name suffix)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()[:8]


def convert(
    config_path: Path, source: Path, out: Path, cfg_options: dict = None, overwrite: bool = False
) -> dict:
    """Convert ``source`` for the backbone of ``config_path``, write ``out``.

    Returns the ``meta`` written into ``out`` (with the added and dropped keys). Raises
    :class:`RequirementError` naming what to install when mmsegmentation or ``mmcv.ops`` is
    missing (mmcv-lite), before anything is read or written.
    """
    require_seg('tools/model_converters/ebm2mmseg.py')
    if out.resolve() == source.resolve():
        raise ConversionError(
            f'OUT {out} is the pretraining checkpoint itself; choose another path'
        )
    check_out(out, overwrite)  # before any work
    config = Config.fromfile(str(config_path))
    if cfg_options:
        config.merge_from_dict(cfg_options)

    print(f'[1/4] reading {source} (weights_only=True)')
    state, source_meta = load_pretraining_state(source)
    print(f'[2/4] extracting the {PRETRAIN_PREFIX}* tensors')
    weights = extract_backbone(state, str(source))
    dropped = sorted({name.split('.')[0] for name in state if not name.startswith(PRETRAIN_PREFIX)})
    print(f'      kept {len(weights)} tensors; dropped {dropped or "nothing"}')

    print(f'[3/4] loading them into the backbone of {config_path}')
    backbone = build_target_backbone(config)
    added, dropped = reconcile_dense_outputs(weights, backbone)
    if added:
        print(
            '      stage output norms absent from pretraining, written at the '
            "backbone's initialization:\n        " + '\n        '.join(added)
        )
    if dropped:
        print(
            '      pooled-feature norm of pretraining, dropped (a dense backbone has no '
            'pooled feature):\n        ' + '\n        '.join(dropped)
        )
    check_loads(weights, backbone)
    print(f'      {type(backbone).__name__}: every tensor loads, no missing or unexpected keys')

    print(f'[4/4] writing {out}')
    meta = dict(
        converted_by='mmpretrain_ebm tools/model_converters/ebm2mmseg.py',
        mmpretrain_ebm_version=mmpretrain_ebm.__version__,
        source=str(source),
        source_sha256=sha256_prefix(source),
        config=str(config_path),
        backbone=type(backbone).__name__,
        added_at_initialization=added,
        dropped_pooled_feature_norm=dropped,
    )
    for key in ('epoch', 'iter'):
        if isinstance(source_meta.get(key), int):
            meta[f'source_{key}'] = source_meta[key]
    save_atomically(dict(meta=meta, state_dict=weights), out, overwrite)
    print(f'done: set model.backbone.init_cfg.checkpoint={out} (see the config) and train')
    return meta


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert an energy-pretraining checkpoint into the backbone checkpoint '
        'of an mmseg UperNet config (configs/benchmarks/mmsegmentation/)'
    )
    parser.add_argument('config', type=Path, help='the mmseg config the checkpoint is for')
    parser.add_argument('src', type=Path, help='checkpoint written by our pretraining')
    parser.add_argument('out', type=Path, help='where to write the backbone checkpoint')
    parser.add_argument('--overwrite', action='store_true', help='replace OUT if it exists')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as key=value pairs (e.g. '
        'model.backbone.arch=deit-small for a model pretrained with another arch)',
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        convert(args.config, args.src, args.out, args.cfg_options, args.overwrite)
    except (ConversionError, RequirementError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
