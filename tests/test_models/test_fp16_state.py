"""EnergyAmpOptimWrapper keeps the model's fp16 scales in the optimizer state."""

import importlib

import pytest
import torch
from ebm_testing import build_model
from mmengine.runner.checkpoint import load_checkpoint, save_checkpoint, weights_to_cpu
from mmpretrain.registry import OPTIM_WRAPPERS


@pytest.fixture(autouse=True)
def amp_wrapper_on_cpu(monkeypatch):
    """mmengine builds AMP wrappers only where a GPU is; their state logic needs none (the
    GradScaler disables itself on CPU, bf16 autocast runs there)."""
    module = importlib.import_module('mmengine.optim.optimizer.amp_optimizer_wrapper')
    monkeypatch.setattr(module, 'is_cuda_available', lambda: True)


def wrapper_for(model):
    return OPTIM_WRAPPERS.build(
        dict(
            type='EnergyAmpOptimWrapper',
            dtype='bfloat16',
            optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3),
        )
    )


def scaler_states(model):
    return {name: scaler.state_dict() for name, scaler in model.fp16_scalers().items()}


def backed_off(model):
    scalers = model.fp16_scalers()
    scalers['energy'].update(found_inf=True)
    scalers['step_loss'].update(found_inf=True)
    scalers['step_loss'].update(found_inf=False)
    return model


def test_scales_survive_a_checkpoint_round_trip(tmp_path):
    """As a runner checkpoint holds them: in the optimizer entry, not the model's weights."""
    model = backed_off(build_model('vit'))
    wrapper = wrapper_for(model)
    with wrapper.optim_context(model):
        pass
    saved = scaler_states(model)
    assert saved == {
        'energy': {'scale': 2.0**7, 'good_steps': 0},
        'step_loss': {'scale': 2.0**15, 'good_steps': 1},
    }
    path = str(tmp_path / 'iter_1.pth')
    save_checkpoint(
        {'state_dict': weights_to_cpu(model.state_dict()), 'optimizer': wrapper.state_dict()},
        path,
    )
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint['optimizer']['energy_scalers'] == saved

    resumed = build_model('vit')
    resumed_wrapper = wrapper_for(resumed)
    load_checkpoint(resumed, path, strict=True)
    resumed_wrapper.load_state_dict(checkpoint['optimizer'])  # before the model is known
    assert scaler_states(resumed) != saved
    assert resumed_wrapper.state_dict()['energy_scalers'] == saved  # kept, not dropped
    with resumed_wrapper.optim_context(resumed):
        pass
    assert scaler_states(resumed) == saved


def test_state_loaded_after_the_first_step_applies_at_once():
    source = backed_off(build_model('vit'))
    source_wrapper = wrapper_for(source)
    with source_wrapper.optim_context(source):
        pass
    target = build_model('vit')
    wrapper = wrapper_for(target)
    with wrapper.optim_context(target):
        pass
    wrapper.load_state_dict(source_wrapper.state_dict())
    assert scaler_states(target) == scaler_states(source)


def test_bad_states_and_models_are_named():
    model = build_model('vit')
    wrapper = wrapper_for(model)
    state = wrapper.state_dict()
    with pytest.raises(ValueError, match="'energy_scalers' must map scaler names"):
        wrapper.load_state_dict({**state, 'energy_scalers': [1.0]})
    fd_model = build_model('vit', grad_mode='finite_difference')
    fd_wrapper = wrapper_for(fd_model)
    with fd_wrapper.optim_context(fd_model):
        pass
    with pytest.raises(ValueError, match=r"scales \['energy'\] that the model does not have"):
        fd_wrapper.load_state_dict({**fd_wrapper.state_dict(), 'energy_scalers': {'energy': {}}})
    linear = torch.nn.Linear(2, 1)
    other = wrapper_for(linear)
    with pytest.raises(TypeError, match='use AmpOptimWrapper for it'):
        with other.optim_context(linear):
            pass
