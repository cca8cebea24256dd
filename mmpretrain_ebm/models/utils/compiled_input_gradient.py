"""Compiled exact input gradient (``grad_mode='compiled'``): dE/dx as one compiled graph
whose backward is the second-order term.

``torch.compile`` cannot run a double backward through a compiled graph, but it compiles a
function that already *is* a first derivative:

    g(x) = torch.func.grad(x -> sum_i E_i(x))(x)          [B, C, H, W]

AOTAutograd traces g's forward (E and dE/dx) and, because the parameters require grad, the
backward of g, i.e. d<g, u>/dtheta, the parameter gradient of Eq. 4's step, into one joint
graph; it partitions that into a forward and a backward graph with the activations passed
between them (recomputing cheap ones), and inductor fuses each. The double backward of
LayerNorm, GELU and softmax then runs as fused kernels instead of eager composites. The
result is an ordinary differentiable tensor: the algorithm's step, stepwise backward, bf16
autocast, gradient accumulation and DDP see what they see in ``'exact'`` mode, and the
gradients are the same up to rounding (tests compare both, and both with a float64 oracle).

What it needs from the energy (checked by :meth:`CompiledInputGradient.check_energy`, each
refused with an error that points to ``grad_mode='exact'``):

- one graph (``fullgraph=True``: a graph break fails loudly instead of running eagerly); the
  numpy floats that mmpretrain stores as ``drop_prob`` (``np.linspace`` drop-path schedule)
  break it in mmcv's ``drop_path``, so they are turned into Python floats on the instance;
- no BatchNorm that updates running statistics in train mode (a buffer mutation inside a
  differentiated, compiled function);
- no activation checkpointing (the partitioner decides what to recompute).

Shapes are static (``dynamic=False``): one compilation per input shape, dtype and autocast
setting, logged once with its time; pretraining configs drop the last, smaller batch, so a
run compiles once. Inductor's on-disk cache (``TORCHINDUCTOR_CACHE_DIR``) makes a rerun or a
resumed run start fast. Restoration without ``create_graph`` (inference) runs eagerly.
"""

import time
from contextlib import nullcontext
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from mmengine.logging import MMLogger
from mmpretrain.registry import MODELS
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from .attention import math_attention
from .energy_scaler import fp16_autocast_active
from .input_gradient import EnergyFn, InputGradient, energy_module, exact_input_gradient

USE_EXACT = "use grad_mode='exact' for this model"
#: ``torch.compile`` modes.
COMPILE_MODES = ('default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs')


class CompilationError(RuntimeError):
    """torch.compile could not build the energy's input gradient as one graph."""


def input_gradient_fn(energy_fn: EnergyFn):
    """``x -> (E(x) [B], dE/dx like x)`` by ``torch.func.grad``, under math attention (the
    only backend with a second derivative): the function that is compiled."""

    def summed(x: Tensor) -> Tuple[Tensor, Tensor]:
        energy = energy_fn(x)
        return energy.sum(), energy

    def input_gradient(x: Tensor) -> Tuple[Tensor, Tensor]:
        with math_attention():
            grad, energy = torch.func.grad(summed, has_aux=True)(x)
        return energy, grad

    # a code object of its own: dynamo caches compiled graphs per code object, and its
    # recompile limit (8, a hard error under fullgraph) must count this model's shapes
    # only, not every model built in the process
    input_gradient.__code__ = input_gradient.__code__.replace()
    return input_gradient


def python_float_drop_probs(module: nn.Module) -> None:
    """Turn numpy ``drop_prob`` attributes into Python floats, in place (a branch on a numpy
    float breaks the compiled graph; the values are unchanged)."""
    for sub in module.modules():
        value = getattr(sub, 'drop_prob', None)
        if isinstance(value, np.floating):
            sub.drop_prob = float(value)


@MODELS.register_module()
class CompiledInputGradient(InputGradient):
    """Exact ``dE/dx`` and its second-order path from one ``torch.compile``-d graph.

    Args:
        backend: ``torch.compile`` backend; ``'inductor'`` fuses kernels, ``'aot_eager'``
            traces the same graphs without code generation (for debugging).
        mode: ``torch.compile`` mode (``None``, ``'max-autotune'``, ...).
        memory_budget: AOTAutograd's activation memory budget in (0, 1]: the share of the
            activations between the forward and backward graph that is saved, the rest
            recomputed (``None``: its default partitioner, which saves what is costly).
    """

    supports_activation_checkpointing = False

    def __init__(
        self,
        backend: str = 'inductor',
        mode: Optional[str] = None,
        memory_budget: Optional[float] = None,
    ) -> None:
        if not isinstance(backend, str) or backend not in torch._dynamo.list_backends(None):
            raise ValueError(
                f'backend must be one of the torch.compile backends '
                f'{tuple(torch._dynamo.list_backends(None))}, got {backend!r}'
            )
        if mode is not None and mode not in COMPILE_MODES:
            raise ValueError(f'mode must be None or one of {COMPILE_MODES}, got {mode!r}')
        if memory_budget is not None and (
            isinstance(memory_budget, bool)
            or not isinstance(memory_budget, (int, float))
            or not 0 < memory_budget <= 1
        ):
            raise ValueError(f'memory_budget must be None or in (0, 1], got {memory_budget!r}')
        self.backend = backend
        self.mode = mode
        self.memory_budget = memory_budget
        self._module: Optional[nn.Module] = None
        self._compiled = None
        #: Seconds of each first call (the forward graph's compilation included; the
        #: backward graph compiles in the first backward), by input signature.
        self.compile_seconds: Dict[tuple, float] = {}

    def check_energy(self, module: nn.Module) -> None:
        tracking = [
            f'{name} ({type(sub).__name__})'
            for name, sub in module.named_modules()
            if isinstance(sub, _BatchNorm) and sub.track_running_stats
        ]
        if tracking:
            raise ValueError(
                "grad_mode='compiled' cannot serve BatchNorm layers that update running "
                f'statistics in train mode ({", ".join(tracking[:3])}'
                f'{", ..." if len(tracking) > 3 else ""}): {USE_EXACT}'
            )
        python_float_drop_probs(module)

    def __call__(self, energy_fn: EnergyFn, x: Tensor, create_graph: bool) -> Tuple[Tensor, Tensor]:
        if not create_graph:  # restoration: no second derivative, eager with fused attention
            with torch.enable_grad():
                return exact_input_gradient(energy_fn, x, create_graph)
        if fp16_autocast_active(x.device.type):
            raise RuntimeError(
                "grad_mode='compiled' runs in float32 or under bf16 autocast; fp16 needs the "
                "dynamic energy scale of grad_mode='exact' (or AmpOptimWrapper(dtype="
                "'bfloat16'))"
            )
        compiled = self._compiled_for(energy_fn)
        signature = (
            tuple(x.shape),
            x.dtype,
            str(x.device),
            torch.is_autocast_enabled(x.device.type),
        )
        first = signature not in self.compile_seconds
        start = time.perf_counter()
        budget = (
            torch._functorch.config.patch(activation_memory_budget=self.memory_budget)
            if first and self.memory_budget is not None
            else nullcontext()
        )
        with torch.enable_grad(), budget:
            try:
                energy, grad = compiled(x.detach())
            except torch._dynamo.exc.TorchDynamoException as error:
                if not first:
                    raise
                module = energy_module(energy_fn)
                name = type(getattr(module, 'backbone', module)).__name__
                raise CompilationError(
                    f"grad_mode='compiled' could not compile the input gradient of {name} "
                    f'({type(module).__name__}) as one graph: {_first_line(error)}; {USE_EXACT}'
                ) from error
        if first:
            self.compile_seconds[signature] = time.perf_counter() - start
            MMLogger.get_current_instance().info(
                f'compiled the energy input gradient for inputs {list(x.shape)} {x.dtype} on '
                f'{x.device} (autocast {signature[3]}): first call '
                f'{self.compile_seconds[signature]:.1f} s (its backward graph compiles in the '
                'first backward)'
            )
        return energy, grad

    def _compiled_for(self, energy_fn: EnergyFn):
        module = energy_module(energy_fn)
        if module is not self._module:
            self._module = module
            self._compiled = torch.compile(
                input_gradient_fn(energy_fn),
                backend=self.backend,
                options=self._inductor_options(),
                fullgraph=True,
                dynamic=False,
            )
            self.compile_seconds = {}
        return self._compiled

    def _inductor_options(self) -> Optional[dict]:
        """``mode``'s inductor options, plus eager's random numbers (``fallback_random``:
        dropout and drop path draw what ``'exact'`` draws, so the gradients agree)."""
        if self.backend != 'inductor':
            return None
        from torch._inductor import list_mode_options

        return dict(list_mode_options(self.mode or 'default'), fallback_random=True)

    def __getstate__(self) -> dict:
        """Copies and pickles leave the compiled function behind (it is rebuilt on use)."""
        state = dict(self.__dict__)
        state.update(_module=None, _compiled=None, compile_seconds={})
        return state


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
