"""Activation checkpointing that survives double backward.

mmpretrain's ``with_cp`` wraps blocks in reentrant ``torch.utils.checkpoint``, which cannot
serve ``torch.autograd.grad(..., create_graph=True)``. :func:`enable_activation_checkpointing`
instead switches chosen blocks to non-reentrant checkpointing, in place: parameter names and
state-dict keys are unchanged, and ``copy.deepcopy`` (EMA) copies the behaviour with the block.
"""

from contextlib import nullcontext
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .attention import in_energy_pass, math_attention
from .batchnorm import RunningStatisticsKept

#: Residual blocks of mmpretrain's ViT, Swin, ConvNeXt and ResNet families.
DEFAULT_CHECKPOINT_BLOCKS: Tuple[str, ...] = (
    'TransformerEncoderLayer',
    'SwinBlock',
    'ConvNeXtBlock',
    'BasicBlock',
    'Bottleneck',
)

_CHECKPOINTED_CLASSES: Dict[type, type] = {}


class _RecomputeContext:
    """Re-enterable context of a block's recomputation (checkpoint may recompute a block more
    than once, e.g. once for ``autograd.grad`` and again in the outer backward).

    Each recomputation runs the block's forward again; its train-mode BatchNorm layers must
    not update their running statistics a second and third time (:class:`RunningStatisticsKept`).
    ``math``: recompute under math attention, as the energy pass's forward ran.
    """

    def __init__(self, block: nn.Module, math: bool) -> None:
        self._math = math
        self._statistics = RunningStatisticsKept(block)

    def __enter__(self) -> None:
        self._attention = math_attention() if self._math else nullcontext()
        self._attention.__enter__()
        self._statistics.__enter__()

    def __exit__(self, *exc_info) -> None:
        self._statistics.__exit__(*exc_info)
        self._attention.__exit__(*exc_info)


def _checkpointed_class(block_cls: type) -> type:
    """A subclass of ``block_cls`` whose ``forward`` is non-reentrant checkpointed."""
    if block_cls in _CHECKPOINTED_CLASSES:
        return _CHECKPOINTED_CLASSES[block_cls]

    def forward(self, *args, **kwargs):
        parent_forward = super(checkpointed, self).forward
        needs_graph = torch.is_grad_enabled() and any(
            isinstance(a, torch.Tensor) and a.requires_grad for a in args
        )
        if not needs_graph:
            return parent_forward(*args, **kwargs)
        # Recompute under the backend the forward used: the outer backward of an energy pass
        # runs outside ``energy_pass_attention`` but must rebuild twice-differentiable graphs.
        math = in_energy_pass()
        return checkpoint(
            parent_forward,
            *args,
            use_reentrant=False,
            context_fn=lambda: (nullcontext(), _RecomputeContext(self, math)),
            **kwargs,
        )

    checkpointed = type(
        f'Checkpointed{block_cls.__name__}',
        (block_cls,),
        {'forward': forward, '__module__': block_cls.__module__},
    )
    _CHECKPOINTED_CLASSES[block_cls] = checkpointed
    return checkpointed


def enable_activation_checkpointing(
    module: nn.Module, block_types: Sequence[str] = DEFAULT_CHECKPOINT_BLOCKS
) -> List[str]:
    """Checkpoint every submodule whose class name is in ``block_types`` (non-reentrant).

    Returns:
        The names of the checkpointed submodules.

    Raises:
        ValueError: if no submodule matches ``block_types``.
    """
    names = []
    for name, sub in module.named_modules():
        if type(sub).__name__ in block_types:
            sub.__class__ = _checkpointed_class(type(sub))
            names.append(name)
    if not names:
        found = sorted({type(m).__name__ for m in module.modules()})
        raise ValueError(
            f'grad_checkpoint=True found no block of types {tuple(block_types)} in '
            f'{type(module).__name__}; pass checkpoint_block_types naming its residual '
            f'blocks, one of {found}'
        )
    return names


def assert_no_reentrant_checkpointing(module: nn.Module) -> None:
    """Reject mmpretrain's ``with_cp=True``: its reentrant checkpoint breaks double backward."""
    offenders = [
        name or type(module).__name__
        for name, sub in module.named_modules()
        if getattr(sub, 'with_cp', False) is True
    ]
    if offenders:
        raise ValueError(
            f'with_cp=True is set in {offenders[:3]}{"..." if len(offenders) > 3 else ""}: '
            'mmpretrain checkpoints with reentrant torch.utils.checkpoint, which cannot '
            'take the second-order gradient the energy step needs. Set with_cp=False in the '
            'backbone and grad_checkpoint=True in EnergyRestorationAlgorithm instead.'
        )
