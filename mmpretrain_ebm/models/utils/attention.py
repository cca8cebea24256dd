"""Attention backend for energy passes.

The fused ``scaled_dot_product_attention`` kernels (flash, memory-efficient, and the CPU flash
kernel) have no second derivative, but the restoration step differentiates ``dE/dx`` again
with respect to the parameters. Energy passes that build that graph (training) therefore run
under PyTorch's math backend; every other forward (restoration without ``create_graph``,
fine-tuning, evaluation, feature extraction) keeps the fused kernels.
"""

import threading
from contextlib import contextmanager
from typing import Iterator

from torch.nn.attention import SDPBackend, sdpa_kernel

_state = threading.local()


def in_energy_pass() -> bool:
    """Whether the calling thread is inside :func:`energy_pass_attention`."""
    return getattr(_state, 'depth', 0) > 0


@contextmanager
def math_attention() -> Iterator[None]:
    """Restrict ``F.scaled_dot_product_attention`` to the twice-differentiable math backend."""
    with sdpa_kernel(SDPBackend.MATH):
        yield


@contextmanager
def energy_pass_attention() -> Iterator[None]:
    """Mark an energy pass: math attention, also for activations recomputed by checkpointing.

    The flag lets :mod:`.checkpointing` recompute checkpointed blocks under the same backend
    during the outer backward, which runs after this context has exited.
    """
    _state.depth = getattr(_state, 'depth', 0) + 1
    try:
        with math_attention():
            yield
    finally:
        _state.depth -= 1
