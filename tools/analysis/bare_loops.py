"""The paper's Listing 1 in plain PyTorch, the ``bare-*`` variants of ``step_variants.py``:
each function sets ``.grad`` of the backbone's and head's parameters and of alpha for one
training step of N restoration steps on a batch (``start``: normalized corrupted images,
``images``: normalized clean ones, [B, C, H, W]), without mmengine; the benchmark's
reference loops and the tests' independent computations."""

from typing import Callable, Dict

import torch
import torch.nn.functional as F


def listing1_gradients(backbone, head, alpha, start, images, num_steps: int) -> None:
    """Listing 1: ``.grad`` of every parameter and alpha from one backward of the summed
    step losses, the second-order term by double backward (math attention; the forward
    under bf16 autocast on CUDA).

    ``start``/``images``: normalized corrupted and clean batches [B, C, H, W]."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    corrupted_images, loss = start, 0
    autocast = torch.autocast('cuda', dtype=torch.bfloat16, enabled=images.is_cuda)
    with autocast, sdpa_kernel(SDPBackend.MATH):
        for _ in range(num_steps):
            corrupted_images = corrupted_images.detach().requires_grad_(True)
            energy_score = head(backbone(corrupted_images))
            (im_grad,) = torch.autograd.grad(
                energy_score.sum(), corrupted_images, create_graph=True
            )
            corrupted_images = corrupted_images - alpha * im_grad
            loss = loss + F.smooth_l1_loss(corrupted_images.float(), images, beta=1.0)
    loss.backward()


def finite_difference_gradients(
    backbone, head, alpha, start, images, num_steps: int, rel_eps: float = 1e-4
) -> None:
    """Listing 1's ``.grad`` with the second-order term estimated from first-order passes
    only, the least work the finite-difference estimator can do. Per step: one pass at
    x = SG(x_{n-1}) for E, dE/dx and grad_theta E(x); then u = -alpha dL/dx_n and one pass for
    grad_theta E(x + eps u); the parameters get (grad_theta E(x + eps u) - grad_theta E(x))
    / eps, alpha its exact -<dE/dx, dL/dx_n>. eps is the one of ``grad_mode=
    'finite_difference'`` (perturbation RMS ``rel_eps`` times that of x). Float32 (no TF32
    on CUDA, as there), fused attention; the perturbed pass replays the random state of the
    first (drop path), and BatchNorm statistics are not frozen (the benchmarked backbones
    have none)."""
    from mmpretrain_ebm.models.utils.finite_difference import full_precision

    params = [p for module in (backbone, head) for p in module.parameters()]
    devices = [start.device] if start.is_cuda else []
    x = start
    with full_precision(start.device.type):
        for _ in range(num_steps):
            x = x.detach().requires_grad_(True)
            random_state = (
                torch.get_rng_state(),
                [torch.cuda.get_rng_state(device) for device in devices],
            )
            im_grad, *base = torch.autograd.grad(
                head(backbone(x)).sum(), [x, *params], allow_unused=True
            )
            x_next = x.detach() - alpha * im_grad
            loss = F.smooth_l1_loss(x_next.float(), images, beta=1.0)
            loss_grad, alpha_grad = torch.autograd.grad(loss, [x_next, alpha])
            direction = -alpha.detach() * loss_grad
            eps = rel_eps * max(x.norm().item(), x.numel() ** 0.5) / direction.norm().item()
            moved = x.detach() + eps * direction
            with torch.random.fork_rng(devices=devices):
                torch.set_rng_state(random_state[0])
                for device, state in zip(devices, random_state[1]):
                    torch.cuda.set_rng_state(state, device)
                moved_grads = torch.autograd.grad(
                    head(backbone(moved)).sum(), params, allow_unused=True
                )
            for param, before, after in zip(params, base, moved_grads):
                if before is not None:
                    add_grad(param, after.sub_(before).div_(eps))
            add_grad(alpha, alpha_grad)
            x = x_next


_WHOLE_STEPS: Dict[int, Callable] = {}


def whole_step_function(backbone, head) -> Callable:
    """``(params, alpha, x, images) -> ((d loss/d params, d loss/d alpha), x_n)`` for one
    step of Listing 1 as a single ``torch.func`` function (inner ``grad`` over x, outer over
    the parameters and alpha), compiled whole (``fullgraph=True``); one per backbone."""
    from torch.func import functional_call, grad

    from mmpretrain_ebm.models.utils import math_attention
    from mmpretrain_ebm.models.utils.compiled_input_gradient import python_float_drop_probs

    python_float_drop_probs(backbone)  # numpy drop_prob values break the graph

    def energy_sum(params, x):
        feats = functional_call(backbone, params['backbone'], (x,))
        return functional_call(head, params['head'], (feats,)).sum()

    def step_loss(params, alpha, x, images):
        with math_attention():
            x_next = x - alpha * grad(energy_sum, argnums=1)(params, x)
        return F.smooth_l1_loss(x_next.float(), images, beta=1.0), x_next.detach()

    key = id(backbone)
    if key not in _WHOLE_STEPS:
        step = grad(step_loss, argnums=(0, 1), has_aux=True)
        _WHOLE_STEPS[key] = torch.compile(step, fullgraph=True, dynamic=False)
    return _WHOLE_STEPS[key]


def whole_step_compiled_gradients(backbone, head, alpha, start, images, num_steps: int) -> None:
    """Listing 1's ``.grad`` with each step's loss and parameter gradients computed by one
    compiled function (:func:`whole_step_function`): the other way to compile the step,
    beside ``grad_mode='compiled'``'s compiled input gradient differentiated by autograd.
    Float32 on the CPU, bf16 autocast on CUDA as the other loops."""
    step = whole_step_function(backbone, head)
    modules = dict(backbone=backbone, head=head)
    params = {name: dict(module.named_parameters()) for name, module in modules.items()}
    detached = {k: {n: p.detach() for n, p in v.items()} for k, v in params.items()}
    autocast = torch.autocast('cuda', dtype=torch.bfloat16, enabled=images.is_cuda)
    x = start
    for _ in range(num_steps):
        with autocast:
            (grads, alpha_grad), x = step(detached, alpha.detach(), x, images)
        for name, module_grads in grads.items():
            for key, value in module_grads.items():
                add_grad(params[name][key], value)
        add_grad(alpha, alpha_grad)


def add_grad(param: torch.Tensor, grad: torch.Tensor) -> None:
    """``param.grad += grad`` (``param.grad`` set if it is None)."""
    if param.grad is None:
        param.grad = grad
    else:
        param.grad += grad
