"""EnergyRestorationAlgorithm: construction, loss dict, modes, checkpoint keys, guards."""

import copy

import pytest
import torch
import torch.nn.functional as F
from ebm_testing import MEAN, STD, TINY_BACKBONES, build_model, grid_mask
from mmengine.optim import OptimWrapper
from mmpretrain.models import VisionTransformer
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmpretrain_ebm.models import EnergyRestorationAlgorithm
from mmpretrain_ebm.models.utils import NonFiniteGuard


def loss_total(losses):
    return sum(value for key, value in losses.items() if 'loss' in key)


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(num_steps=0), r'num_steps must be an int >= 1, got 0'),
        (dict(num_steps=1.5), r'num_steps.*1\.5'),
        (dict(alpha=0.0), r'alpha.*> 0, got 0\.0'),
        (dict(alpha=-0.1), r'alpha.*got -0\.1'),
        (dict(alpha=float('nan')), r'alpha.*got nan'),
        (
            dict(grad_mode='finite'),
            r"grad_mode must be one of \('exact', 'finite_difference', 'compiled'\) or an "
            r'estimator '
            r"config dict.*got 'finite'",
        ),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_model('vit', **kwargs)


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(grad_checkpoint=1), r'grad_checkpoint must be True or False, got 1'),
        (dict(stepwise_backward='yes'), r"stepwise_backward must be True or False, got 'yes'"),
        (
            dict(recompute_elementwise='no'),
            r"recompute_elementwise must be True or False, got 'no'",
        ),
        (dict(learnable_alpha=0), r'learnable_alpha must be True or False, got 0'),
        (dict(loss=None), r'loss must be a criterion config dict .* or a callable .*got None'),
    ],
)
def test_wrongly_typed_arguments_are_refused(kwargs, message):
    with pytest.raises(TypeError, match=message):
        build_model('vit', **kwargs)


@pytest.mark.parametrize(
    'grad_mode',
    [
        dict(type='ExactInputGradient'),
        dict(type='FiniteDifferenceInputGradient'),
        'finite_difference',
    ],
)
@pytest.mark.parametrize(
    'options, names',
    [
        (dict(recompute_elementwise=False), 'recompute_elementwise'),
        (dict(energy_scaler=dict(init_scale=2.0**4)), 'energy_scaler'),
        (dict(recompute_elementwise=True, energy_scaler={}), 'recompute_elementwise and energy'),
    ],
)
def test_exact_options_are_refused_where_they_would_be_ignored(grad_mode, options, names):
    with pytest.raises(ValueError, match=rf"{names}.* configure grad_mode='exact' only"):
        build_model('vit', grad_mode=grad_mode, **options)


def test_exact_options_reach_the_estimator():
    model = build_model('vit', recompute_elementwise=False, energy_scaler=dict(init_scale=2.0**4))
    assert model.input_gradient.recompute_elementwise is False
    assert model.input_gradient.scaler.scale == 2.0**4
    in_dict = build_model(
        'vit', grad_mode=dict(type='ExactInputGradient', recompute_elementwise=False)
    )
    assert in_dict.input_gradient.recompute_elementwise is False
    assert build_model('vit').input_gradient.recompute_elementwise is True


def test_restore_under_inference_mode_is_a_clear_error(photos):
    model = build_model('vit', num_steps=1).eval()
    with (
        torch.inference_mode(),
        pytest.raises(RuntimeError, match=r'inference_mode\(\).*dE/dx.*use torch.no_grad\(\)'),
    ):
        model.restore(photos[:2])
    with torch.no_grad():
        assert len(model.restore(photos[:2])) == 2


def test_head_width_mismatch_is_a_clear_error(photos):
    model = build_model('vit', head=dict(type='EnergyHead', in_channels=48))
    with pytest.raises(ValueError, match=r'in_channels=48.*width 32'):
        model.loss([photos[:2], photos[:2]])


@pytest.mark.parametrize(
    'inputs, message',
    [
        (lambda x: x, 'a single tensor'),
        (lambda x: [x], '1 view'),
        (lambda x: [x, x[:, :, :16]], 'one shape'),
    ],
)
def test_missing_corrupted_view_is_a_clear_error(photos, inputs, message):
    model = build_model('vit')
    with pytest.raises(ValueError, match=message):
        model.loss(inputs(photos[:2]))


def test_state_dict_holds_weights_and_alpha_only_and_the_backbone_transfers():
    model = build_model('vit')
    keys = list(model.state_dict())
    assert 'alpha' in keys
    assert all(k == 'alpha' or k.startswith(('backbone.', 'head.')) for k in keys), keys
    # a fine-tune model loads the backbone with prefix 'backbone.'
    backbone = VisionTransformer(
        **{k: v for k, v in TINY_BACKBONES['vit'][0].items() if k != 'type'}
    )
    state = {
        k[len('backbone.') :]: v for k, v in model.state_dict().items() if k.startswith('backbone.')
    }
    result = backbone.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for key, value in backbone.state_dict().items():
        torch.testing.assert_close(value, state[key])


def scaler_states(model):
    return {name: scaler.state_dict() for name, scaler in model.fp16_scalers().items()}


def test_checkpoint_of_the_previous_layout_loads_its_fp16_scales_strictly():
    """Checkpoints written before the scales moved to the optimizer wrapper hold them as the
    model's ``_extra_state`` (rows: energy scale, step-loss scale)."""
    state = build_model('vit').state_dict()
    state['_extra_state'] = torch.tensor([[2.0**7, 3.0], [2.0**15, 1.0]], dtype=torch.float64)
    model = build_model('vit')
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert scaler_states(model) == {
        'energy': {'scale': 2.0**7, 'good_steps': 3},
        'step_loss': {'scale': 2.0**15, 'good_steps': 1},
    }


@pytest.mark.parametrize('state', [torch.zeros(3), {'scale': 1.0}])
def test_malformed_legacy_scaler_state_is_named(state):
    model_state = build_model('vit').state_dict()
    model_state['_extra_state'] = state
    with pytest.raises(ValueError, match=r'_extra_state .* \[2, 2\] of \(scale, clean steps'):
        build_model('vit').load_state_dict(model_state)


def test_alpha_learnable_or_fixed():
    learnable = build_model('vit', alpha=0.5)
    assert isinstance(learnable.alpha, torch.nn.Parameter) and learnable.alpha.item() == 0.5
    fixed = build_model('vit', alpha=0.5, learnable_alpha=False)
    assert not isinstance(fixed.alpha, torch.nn.Parameter)
    assert 'alpha' in dict(fixed.named_buffers()) and 'alpha' in fixed.state_dict()


def test_loss_dict_sums_to_the_mean_over_steps(photos):
    torch.manual_seed(0)
    model = build_model('vit', num_steps=3, alpha=2.0)
    clean, corrupted = photos[:4], grid_mask(photos[:4])
    losses = model.loss([clean, corrupted])
    assert set(losses) == {
        'loss_step1',
        'loss_step2',
        'loss_step3',
        'alpha',
        'energy_corrupted',
        'energy_clean',
    }
    chain = model.restore(corrupted)
    per_step = [F.smooth_l1_loss(x, clean, beta=1.0) for x in chain[1:]]
    for n, expected in enumerate(per_step, start=1):
        torch.testing.assert_close(losses[f'loss_step{n}'], expected / 3)
    total, log_vars = model.parse_losses(losses)  # what mmengine optimizes and logs
    torch.testing.assert_close(total, torch.stack(per_step).mean())
    assert log_vars['alpha'] == pytest.approx(2.0)
    with torch.no_grad():
        torch.testing.assert_close(losses['energy_clean'], model.energy(clean).mean())
        torch.testing.assert_close(losses['energy_corrupted'], model.energy(corrupted).mean())


@pytest.mark.parametrize(
    'setting, logged_calls',
    [(3, [0, 3, 6]), (True, list(range(7))), (1, list(range(7))), (False, []), (0, [])],
)
def test_clean_energy_is_logged_every_nth_call(photos, setting, logged_calls):
    model = build_model('vit', num_steps=1, log_clean_energy=setting)
    clean, corrupted = photos[:2], grid_mask(photos[:2])
    logged = [call for call in range(7) if 'energy_clean' in model.loss([clean, corrupted])]
    assert logged == logged_calls


def test_clean_energy_is_logged_every_10th_call_by_default(photos):
    model = build_model('vit', num_steps=1)
    clean, corrupted = photos[:2], grid_mask(photos[:2])
    logged = [call for call in range(12) if 'energy_clean' in model.loss([clean, corrupted])]
    assert logged == [0, 10]


@pytest.mark.parametrize('bad', [-1, 2.5, '10', None])
def test_bad_clean_energy_interval_is_named(bad):
    with pytest.raises(ValueError, match=f'log_clean_energy must be .* got {bad!r}'):
        build_model('vit', log_clean_energy=bad)


def test_clean_energy_logging_leaves_batchnorm_statistics_alone(photos):
    model = build_model('resnet', num_steps=1)
    silent = build_model('resnet', num_steps=1, log_clean_energy=False)
    silent.load_state_dict(model.state_dict())
    corrupted = grid_mask(photos[:4])
    model.loss([photos[:4], corrupted])
    silent.loss([photos[:4], corrupted])
    for (key, value), other in zip(model.state_dict().items(), silent.state_dict().values()):
        torch.testing.assert_close(value, other, msg=key)


def test_restore_tensor_and_predict_modes(photos):
    model = build_model('vit', num_steps=2).eval()
    corrupted = grid_mask(photos[:3])
    with torch.no_grad():
        chain = model.restore(corrupted)
        as_tensor = model([photos[:3], corrupted], mode='tensor')
        samples = model.predict([photos[:3], corrupted])
    assert len(chain) == 3 and all(x.shape == corrupted.shape for x in chain)
    assert all(not x.requires_grad for x in chain)
    torch.testing.assert_close(chain[0], corrupted)
    assert not torch.allclose(chain[1], chain[0])
    for x, y in zip(chain, as_tensor):
        torch.testing.assert_close(x, y)
    assert len(samples) == 3 and isinstance(samples[0], DataSample)
    torch.testing.assert_close(samples[1].restoration_chain, torch.stack(chain, 1)[1])
    assert all(p.grad is None for p in model.parameters())  # inference accumulates nothing
    assert not model.training


def test_extract_feat_is_the_backbone(photos):
    model = build_model('vit').eval()
    with torch.no_grad():
        torch.testing.assert_close(model.extract_feat(photos[:2])[0], model.backbone(photos[:2])[0])


def make_batch(photos):
    """A data batch as the dataloader delivers it: BGR uint8 views [clean, corrupted]."""
    clean = (photos[:4] * STD + MEAN).round().clamp(0, 255)
    corrupted = clean * (grid_mask(photos[:4]) != 0)
    to_bgr = [2, 1, 0]
    views = [clean[:, to_bgr].to(torch.uint8), corrupted[:, to_bgr].to(torch.uint8)]
    samples = [DataSample(metainfo=dict(corruption='grid_mask')) for _ in range(4)]
    return dict(inputs=views, data_samples=samples)


def test_train_step_through_the_data_preprocessor(photos):
    torch.manual_seed(0)
    model = build_model('vit', num_steps=2)
    before = copy.deepcopy(model.state_dict())
    wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    log_vars = model.train_step(make_batch(photos), wrapper)
    assert {'loss', 'loss_step1', 'loss_step2', 'alpha', 'energy_clean', 'energy_corrupted'} <= set(
        log_vars
    )
    assert log_vars['loss'].item() == pytest.approx(
        (log_vars['loss_step1'] + log_vars['loss_step2']).item()
    )
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert 'alpha' in changed and 'head.fc.weight' in changed
    assert any(k.startswith('backbone.layers.0') for k in changed)


def test_built_from_the_registry_with_defaults():
    model = MODELS.build(
        dict(
            type='EnergyRestorationAlgorithm',
            backbone=TINY_BACKBONES['vit'][0],
            head=dict(type='EnergyHead', in_channels=32),
        )
    )
    assert isinstance(model, EnergyRestorationAlgorithm)
    assert model.num_steps == 2 and model.criterion.beta == 1.0
    assert isinstance(model.alpha, torch.nn.Parameter)


@pytest.mark.parametrize(
    'poison, message',
    [
        ('head', r'non-finite energy at restoration step 1 of 2'),
        ('alpha', r'alpha is inf'),
        ('huge_alpha', r'non-finite restoration loss at restoration step 1 of 2'),
        # finite forward quantities, but step 1's gradients (taken at once, stepwise backward)
        ('gradient', r'non-finite parameter gradient at restoration step 1 of 2'),
    ],
)
def test_non_finite_values_stop_before_the_weights_change(photos, poison, message):
    model = build_model('vit', num_steps=2)
    with torch.no_grad():
        if poison == 'head':
            model.head.fc.weight[0, 0] = float('nan')
        elif poison == 'alpha':
            model.alpha.fill_(float('inf'))
        elif poison == 'gradient':
            model.head.fc.weight.register_hook(lambda grad: grad * float('inf'))
        else:
            model.alpha.fill_(3e38)
    before = copy.deepcopy(model.state_dict())
    wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    with pytest.raises(FloatingPointError, match=message):
        model.train_step(make_batch(photos), wrapper)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0, equal_nan=True, msg=key)


def test_the_first_failing_step_is_named_even_when_a_later_one_fails_too():
    def guard(early_gradient_finite: bool) -> NonFiniteGuard:
        guard = NonFiniteGuard(num_steps=2)
        guard.watch(0, alpha=torch.tensor(1.0))
        for n, energy in enumerate([torch.ones(2), torch.full((2,), float('nan'))], start=1):
            guard.watch(n, energy=energy, grad=torch.zeros(2), loss=torch.tensor(1.0))
        guard.watch_flags('parameter_gradient', [torch.tensor(early_gradient_finite)])
        return guard

    message = 'non-finite parameter gradient at restoration step 1 of 2'
    with pytest.raises(FloatingPointError, match=message):
        guard(early_gradient_finite=False).check()
    with pytest.raises(FloatingPointError, match='non-finite energy at restoration step 2'):
        guard(early_gradient_finite=True).check(note=' (note)')


def test_stepwise_backward_when_no_trainable_parameter_gets_a_gradient(photos):
    """Only the pre-head bias trains (it gets no gradient): the early step adds nothing."""
    model = build_model('vit', num_steps=2, learnable_alpha=False)
    for name, param in model.named_parameters():
        param.requires_grad_(name == 'backbone.ln1.bias')
    clean = photos[:2]
    losses = model.loss([clean, clean * (grid_mask(clean) != 0)], [DataSample()] * 2)
    assert torch.isfinite(losses['loss_step1'] + losses['loss_step2'])
