"""Double backward through every backbone family; checkpointing and attention backends."""

import copy
import importlib
from contextlib import nullcontext

import pytest
import torch
from ebm_testing import TINY_BACKBONES, build_model, grid_mask
from mmpretrain.models import ConvNeXt

from mmpretrain_ebm.models import EnergyRestorationAlgorithm
from mmpretrain_ebm.models.utils import DEFAULT_CHECKPOINT_BLOCKS, in_energy_pass

input_gradient_module = importlib.import_module('mmpretrain_ebm.models.utils.input_gradient')


def parameter_gradients(model, photos):
    torch.manual_seed(1)  # same dropout/drop-path draws in compared runs
    model.zero_grad()
    corrupted = grid_mask(photos[:4], generator=torch.Generator().manual_seed(0))
    losses = model.loss([photos[:4], corrupted])
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    return {n: p.grad for n, p in model.named_parameters()}


# A bias added right before the energy's linear map shifts E by a constant: dE/dx, and so
# the loss, does not depend on it (DDP fills in zero gradients for it).
NO_SECOND_ORDER_PATH = {
    'vit': {'backbone.ln1.bias'},
    'convnext': {'backbone.norm1.bias'},
    'swin': {'backbone.norm1.bias'},
    'resnet': set(),
}


@pytest.mark.parametrize('backbone', sorted(TINY_BACKBONES))
def test_second_order_gradients_reach_the_backbone(backbone, photos):
    torch.manual_seed(0)
    model = build_model(backbone, num_steps=2)
    grads = parameter_gradients(model, photos)
    assert {n for n, g in grads.items() if g is None} == NO_SECOND_ORDER_PATH[backbone]
    grads = {n: g for n, g in grads.items() if g is not None}
    assert all(torch.isfinite(g).all() for g in grads.values())
    nonzero = sum(bool(g.abs().sum() > 0) for g in grads.values())
    assert nonzero >= 0.9 * len(grads), [n for n, g in grads.items() if g.abs().sum() == 0]
    first_layer = next(g for n, g in grads.items() if n.startswith('backbone.'))
    assert first_layer.abs().sum() > 0 and grads['head.fc.weight'].abs().sum() > 0


@pytest.mark.parametrize('backbone', sorted(TINY_BACKBONES))
def test_non_reentrant_checkpointing_gives_the_same_gradients(backbone, photos):
    torch.manual_seed(0)
    plain = build_model(backbone, num_steps=2)
    checkpointed = build_model(backbone, num_steps=2, grad_checkpoint=True)
    checkpointed.load_state_dict(plain.state_dict())
    wrapped = [
        type(m).__name__
        for m in checkpointed.backbone.modules()
        if type(m).__name__.startswith('Checkpointed')
    ]
    assert wrapped and all(
        name[len('Checkpointed') :] in DEFAULT_CHECKPOINT_BLOCKS for name in wrapped
    )
    assert list(checkpointed.state_dict()) == list(plain.state_dict())
    expected, actual = parameter_gradients(plain, photos), parameter_gradients(checkpointed, photos)
    for name, grad in expected.items():
        if grad is None:
            assert actual[name] is None, name
        else:
            torch.testing.assert_close(actual[name], grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize('momentum', [0.1, None], ids=['momentum', 'cumulative'])
def test_checkpointing_updates_batchnorm_statistics_once_per_pass(momentum, photos):
    """Checkpoint recomputes each block in ``autograd.grad`` and in the outer backward;
    neither recomputation may move the running statistics again."""
    torch.manual_seed(0)
    plain = build_model('resnet', num_steps=2)
    checkpointed = build_model('resnet', num_steps=2, grad_checkpoint=True)
    checkpointed.load_state_dict(plain.state_dict())
    for model in (plain, checkpointed):
        for bn in model.modules():
            if isinstance(bn, torch.nn.BatchNorm2d):
                bn.momentum = momentum
    expected, actual = parameter_gradients(plain, photos), parameter_gradients(checkpointed, photos)
    for name, grad in expected.items():
        torch.testing.assert_close(actual[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    buffers = dict(checkpointed.named_buffers())
    assert int(buffers['backbone.layer1.0.bn1.num_batches_tracked']) == 2  # one per step
    for name, buffer in plain.named_buffers():
        torch.testing.assert_close(buffers[name], buffer, rtol=1e-5, atol=1e-7, msg=name)
    assert all(
        bn.momentum == momentum
        for bn in checkpointed.modules()
        if isinstance(bn, torch.nn.BatchNorm2d)
    )


def test_checkpointed_model_deep_copies_with_its_own_weights(photos):
    model = build_model('vit', num_steps=1, grad_checkpoint=True)
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for p in twin.parameters():
            p.mul_(0.5)
    grads = parameter_gradients(twin, photos)
    assert all(p.grad is None for p in model.parameters())
    assert grads['head.fc.weight'] is not None


def test_unmatched_checkpoint_blocks_are_reported():
    with pytest.raises(ValueError, match='checkpoint_block_types'):
        build_model('vit', grad_checkpoint=True, checkpoint_block_types=('NoSuchBlock',))


@pytest.mark.parametrize('backbone', ['convnext', 'swin', 'resnet'])
def test_mmpretrain_with_cp_is_refused(backbone):
    cfg, width = copy.deepcopy(TINY_BACKBONES[backbone])
    cfg['with_cp'] = True
    with pytest.raises(ValueError, match='with_cp=True.*grad_checkpoint=True'):
        EnergyRestorationAlgorithm(backbone=cfg, head=dict(type='EnergyHead', in_channels=width))


@pytest.mark.filterwarnings('ignore:torch.utils.checkpoint')
def test_reentrant_with_cp_really_breaks_double_backward(photos):
    """Why with_cp is refused: mmpretrain's reentrant checkpoint fails under autograd.grad."""
    cfg = {k: v for k, v in TINY_BACKBONES['convnext'][0].items() if k != 'type'}
    backbone = ConvNeXt(with_cp=True, **cfg)
    x = photos[:2].clone().requires_grad_(True)
    with pytest.raises(RuntimeError):
        (grad,) = torch.autograd.grad(backbone(x)[-1].sum(), x, create_graph=True)
        grad.sum().backward()


def test_vit_energy_passes_need_math_attention_and_only_they_get_it(photos, monkeypatch):
    model = build_model('vit', num_steps=1)
    corrupted = grid_mask(photos[:2])
    model.loss([photos[:2], corrupted])['loss_step1'].backward()  # math backend: works

    # outside energy passes the fused CPU kernel stays selected (it has no double backward)
    x = corrupted.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.energy(x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match='scaled_dot_product'):
        grad.sum().backward()

    # and without the math backend the training step itself fails
    monkeypatch.setattr(input_gradient_module, 'energy_pass_attention', nullcontext)
    with pytest.raises(RuntimeError, match='scaled_dot_product'):
        model.loss([photos[:2], corrupted])['loss_step1'].backward()


def test_restore_without_second_order_path_keeps_the_fused_kernels(photos):
    """``create_graph=False`` (restore, predict, visualization) differentiates once: the
    fused attention kernels serve it, with the math backend's result."""
    model = build_model('vit', num_steps=2).eval()
    corrupted = grid_mask(photos[:2])
    seen = []
    model.backbone.register_forward_pre_hook(
        lambda *_: seen.append((in_energy_pass(), torch.backends.cuda.flash_sdp_enabled()))
    )
    chain = model.restore(corrupted)
    assert seen == [(False, True)] * 2
    with_graph = list(model.chain(corrupted, create_graph=True))
    assert seen[2:] == [(True, False)] * 2
    for restored, step in zip(chain[1:], with_graph):
        torch.testing.assert_close(restored, step.x.detach(), rtol=1e-5, atol=1e-6)
