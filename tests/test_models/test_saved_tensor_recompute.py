"""recompute_elementwise=True: a smaller double-backward graph, bit-identical gradients."""

import copy

import pytest
import torch
import torch.nn.functional as F
from ebm_testing import TINY_BACKBONES, build_model, grid_mask, real_photo_batch

from mmpretrain_ebm.models import EnergyRestorationAlgorithm
from mmpretrain_ebm.models.utils.saved_tensor_recompute import (
    _Kept,
    _pack,
    _Recipe,
    _unpack,
    recompute_elementwise_saved_tensors,
)


def problem(backbone: str, **kwargs):
    torch.manual_seed(0)
    model = build_model(backbone, num_steps=2, log_clean_energy=False, **kwargs).double()
    clean = real_photo_batch(count=4).double()
    return model, clean, grid_mask(clean, generator=torch.Generator().manual_seed(1))


def loss_and_gradients(model, clean, corrupted, recompute: bool, stepwise: bool):
    model.input_gradient.recompute_elementwise = recompute
    model.stepwise_backward = stepwise
    model.zero_grad()
    torch.manual_seed(2)  # Swin's drop path draws random numbers
    losses = model.loss([clean, corrupted])
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    return total.item(), {
        n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
    }


@pytest.mark.parametrize('backbone', ['vit', 'swin', 'convnext'])
@pytest.mark.parametrize('stepwise', [True, False])
def test_gradients_are_bit_identical(backbone, stepwise):
    model, clean, corrupted = problem(backbone)
    loss_off, off = loss_and_gradients(model, clean, corrupted, False, stepwise)
    loss_on, on = loss_and_gradients(model, clean, corrupted, True, stepwise)
    assert loss_on == loss_off and on.keys() == off.keys() and len(off) > 4
    for name, grad in off.items():
        assert torch.equal(on[name], grad), name


def test_with_activation_checkpointing():
    model, clean, corrupted = problem('vit', grad_checkpoint=True)
    _, off = loss_and_gradients(model, clean, corrupted, False, True)
    _, on = loss_and_gradients(model, clean, corrupted, True, True)
    for name, grad in off.items():
        assert torch.equal(on[name], grad), name


def live_bytes_of_one_step_graph(model, corrupted) -> int:
    """Net bytes allocated by one exact step while its graph is kept (profiler count)."""
    with torch.profiler.profile(profile_memory=True) as prof:
        step = model.step(corrupted, create_graph=True)
    retained = sum(event.self_cpu_memory_usage for event in prof.events())
    del step
    return retained


def test_graph_memory_shrinks():
    # MLP 4x wider than the blocks, as in ViTs: the GELU output, its backward and the
    # softmax backward are three of the largest tensors a block keeps
    backbone, _ = copy.deepcopy(TINY_BACKBONES['vit'])
    backbone['arch'] = dict(embed_dims=64, num_layers=2, num_heads=2, feedforward_channels=256)
    model = EnergyRestorationAlgorithm(
        backbone=backbone, num_steps=1, head=dict(type='EnergyHead', in_channels=64)
    )
    corrupted = grid_mask(real_photo_batch(count=4))
    retained = {}
    for recompute in (False, True):
        model.input_gradient.recompute_elementwise = recompute
        retained[recompute] = live_bytes_of_one_step_graph(model, corrupted)
    assert retained[True] < 0.82 * retained[False], retained  # measured 0.78


@pytest.mark.parametrize(
    'make',
    [
        lambda z, g: F.gelu(z),
        lambda z, g: F.gelu(z, approximate='tanh'),
        lambda z, g: torch.ops.aten.gelu_backward(g, z),
        lambda z, g: torch._softmax_backward_data(g, torch.softmax(z, -1), -1, z.dtype),
        lambda z, g: torch._softmax_backward_data(g, torch.softmax(z, 1), 1, z.dtype),
    ],
    ids=['gelu', 'gelu-tanh', 'gelu-backward', 'softmax-backward', 'softmax-backward-dim1'],
)
def test_each_recipe_recomputes_the_same_values(make):
    z = torch.randn(3, 5, 7, dtype=torch.float64, requires_grad=True)
    g = torch.randn(3, 5, 7, dtype=torch.float64, requires_grad=True)
    out = make(z, g)
    for saved in (out, out.view(15, 7), out.transpose(0, 2), out[1:]):
        packed = _pack(saved)
        assert isinstance(packed, _Recipe)
        restored = _unpack(packed)
        assert torch.equal(restored, saved) and restored.stride() == saved.stride()


def test_other_tensors_are_kept_detached():
    z = torch.randn(4, 6, requires_grad=True)
    strided = F.gelu(z.t())  # the output follows the input's (transposed) layout
    assert not strided.is_contiguous()
    for saved in (z, z * 2, torch.tanh(z), strided):
        packed = _pack(saved)
        assert isinstance(packed, _Kept) and packed.tensor.grad_fn is None
        assert packed.tensor.data_ptr() == saved.data_ptr()
        assert torch.equal(_unpack(packed), saved)


def test_a_graph_dropped_without_backward_is_freed():
    """Nothing the hooks store may hold a grad_fn: a cycle through C++ would leak."""
    model, _, corrupted = problem('vit')
    model.float()
    with torch.profiler.profile(profile_memory=True) as prof:
        chain = list(model.chain(corrupted.float(), create_graph=True))
        assert chain[-1].x.requires_grad
        del chain
    assert sum(event.self_cpu_memory_usage for event in prof.events()) == 0


def test_in_place_change_of_a_kept_tensor_is_an_error():
    """Autograd does not check hooked tensors itself: the hooks must."""
    z = torch.randn(4, 6, requires_grad=True)
    with recompute_elementwise_saved_tensors():
        product = torch.tanh(z * 1.0) * z  # saves tanh(z) and z
    with torch.no_grad():
        z.mul_(2.0)
    with pytest.raises(RuntimeError, match='modified by an in-place operation'):
        product.sum().backward()


def test_in_place_change_of_an_input_is_an_error():
    z = torch.randn(4, 6, requires_grad=True) * 1.0
    weight = torch.randn(4, 6, requires_grad=True)
    with recompute_elementwise_saved_tensors():
        product = F.gelu(z) * weight  # saves gelu(z) as a recipe over z
    with torch.no_grad():
        z.add_(1.0)
    with pytest.raises(RuntimeError, match='modified'):
        product.sum().backward()
