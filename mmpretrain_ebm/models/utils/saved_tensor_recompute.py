"""Keep fewer tensors in the double-backward graph: recompute cheap elementwise results.

The exact step keeps the forward graph of E and the graph of dE/dx (``create_graph=True``)
alive until its loss is backpropagated. Some of the tensors those graphs save are the
outputs of cheap elementwise ops whose inputs the same graph saves anyway:

- ``gelu(z)``, saved by the next linear layer (its input), while GELU saves ``z``;
- ``gelu_backward(g, z)``, saved by the inner backward's next matrix product, while the
  double backward of GELU saves ``g`` and ``z``;
- ``softmax_backward(g, a)``, saved by the two attention products of the inner backward,
  while the double backward of softmax saves ``g`` and ``a``.

:func:`recompute_elementwise_saved_tensors` installs ``saved_tensors_hooks`` that store such a
tensor as a recipe (the op and references to its saved inputs) and rerun the same ATen op
when autograd unpacks it. The same kernel on the same inputs gives bit-identical values, and
autograd re-attaches the original ``grad_fn`` to what the unpack hook returns, so the
gradients are unchanged. On ViT-B this drops three of the largest per-block tensors (two of
MLP width, one attention map) for a few elementwise passes.
"""

from contextlib import contextmanager
from typing import Callable, Iterator, NamedTuple, Tuple

import torch
from torch import Tensor

_INT64_WRAP = 2**64


def _signed_dim(dim: int) -> int:
    """Saved ``int64_t`` dims come back as unsigned Python ints (-1 -> 2**64 - 1)."""
    return dim - _INT64_WRAP if dim >= 2**63 else dim


def _gelu_inputs(node) -> Tuple[Tuple[Tensor, ...], Callable[..., Tensor]]:
    approximate = node._saved_approximate
    return (node._saved_self,), lambda z: torch.ops.aten.gelu(z, approximate=approximate)


def _gelu_backward_inputs(node) -> Tuple[Tuple[Tensor, ...], Callable[..., Tensor]]:
    approximate = node._saved_approximate
    return (
        (node._saved_grad_output, node._saved_self),
        lambda g, z: torch.ops.aten.gelu_backward(g, z, approximate=approximate),
    )


def _softmax_backward_inputs(node) -> Tuple[Tuple[Tensor, ...], Callable[..., Tensor]]:
    dim = _signed_dim(node._saved_dim)
    output = node._saved_output
    return (
        (node._saved_grad_output, output),
        lambda g, a: torch._softmax_backward_data(g, a, dim, a.dtype),
    )


#: grad_fn name of the op that produced a tensor -> (its inputs, how to recompute it).
RECOMPUTABLE_OPS = {
    'GeluBackward0': _gelu_inputs,
    'GeluBackwardBackward0': _gelu_backward_inputs,
    'SoftmaxBackwardDataBackward0': _softmax_backward_inputs,
}


class _Kept(NamedTuple):
    """A saved tensor kept as is (detached) and its version when saved."""

    tensor: Tensor
    version: int


class _Recipe(NamedTuple):
    """How to rebuild a saved tensor: ``op(*inputs)`` is its base, then its view."""

    op: Callable[..., Tensor]
    inputs: Tuple[Tensor, ...]
    versions: Tuple[int, ...]
    base_meta: Tuple[torch.Size, torch.dtype]
    view: Tuple[torch.Size, Tuple[int, ...], int]


def _pack(tensor: Tensor):
    """A recipe for an output of :data:`RECOMPUTABLE_OPS`; any other tensor is kept.

    Everything stored is ``detach()``-ed (same storage and version counter, no ``grad_fn``):
    a tensor kept with its ``grad_fn`` by the node that produced it would be a reference
    cycle through C++ that Python's collector cannot break, and a graph dropped without
    backward would leak. Autograd skips its in-place-modification check for hooked tensors,
    so the versions are recorded here and checked on unpack.
    """
    base = tensor._base if tensor._base is not None else tensor
    node = base.grad_fn
    recipe_of = RECOMPUTABLE_OPS.get(type(node).__name__) if node is not None else None
    if recipe_of is None or not base.is_contiguous() or base.storage_offset() != 0:
        return _Kept(tensor.detach(), tensor._version)
    inputs, op = recipe_of(node)
    if any(t.dtype != base.dtype or t.device != base.device for t in inputs):
        return _Kept(tensor.detach(), tensor._version)  # e.g. half-to-float softmax
    inputs = tuple(t.detach() for t in inputs)
    return _Recipe(
        op,
        inputs,
        tuple(t._version for t in inputs),
        (base.shape, base.dtype),
        (tensor.shape, tensor.stride(), tensor.storage_offset()),
    )


_MODIFIED = (
    '{what} was modified by an in-place operation after autograd saved it (version '
    '{now}, saved at {saved}); its gradient would be wrong'
)


def _unpack(packed):
    if isinstance(packed, _Kept):
        if packed.tensor._version != packed.version:
            raise RuntimeError(
                _MODIFIED.format(
                    what='a tensor needed for the gradient',
                    now=packed.tensor._version,
                    saved=packed.version,
                )
            )
        return packed.tensor
    versions = tuple(t._version for t in packed.inputs)
    if versions != packed.versions:
        raise RuntimeError(
            _MODIFIED.format(
                what='an input of a recomputable saved tensor', now=versions, saved=packed.versions
            )
        )
    device_type = packed.inputs[0].device.type
    with torch.no_grad(), torch.autocast(device_type, enabled=False):
        base = packed.op(*packed.inputs)
    shape, dtype = packed.base_meta
    if base.shape != shape or base.dtype != dtype:
        raise RuntimeError(
            f'recomputed saved tensor has shape {tuple(base.shape)} and dtype '
            f'{base.dtype}, expected {tuple(shape)} and {dtype}'
        )
    size, stride, offset = packed.view
    return base.as_strided(size, stride, offset)


@contextmanager
def recompute_elementwise_saved_tensors(enabled: bool = True) -> Iterator[None]:
    """Within this context, autograd saves the outputs of :data:`RECOMPUTABLE_OPS` as
    recipes and recomputes them when unpacked (forward and ``create_graph`` backward alike).

    Activation checkpointing installs its own hooks inside; the tensors it handles are not
    affected. ``enabled=False`` is a no-op (for comparisons).
    """
    if not enabled:
        yield
        return
    with torch.autograd.graph.saved_tensors_hooks(_pack, _unpack):
        yield
