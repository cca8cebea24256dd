"""On the device: restoration and prediction, and training through tools/train.py's config
handling (``--amp``, bf16 by default) with a checkpoint saved and resumed."""

import importlib.util
from pathlib import Path

import pytest
import torch
from device_testing import ieee_float32, problem, random_conv_biases
from mmengine.config import Config
from mmengine.runner import Runner
from mmpretrain.structures import DataSample
from test_train_tools import write_config

REPO = Path(__file__).resolve().parents[2]


def train_tool():
    spec = importlib.util.spec_from_file_location('train_tool', REPO / 'tools' / 'train.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('backbone', ['vit', 'swin', 'convnext'])
def test_restore_and_predict_on_the_device_match_the_cpu(device, backbone):
    model, clean, corrupted = problem(backbone, device, num_steps=2)
    random_conv_biases(model)  # no LayerNorm singularity to amplify rounding differences
    model.to(device).eval()
    with torch.no_grad(), ieee_float32():
        chain = model.restore(corrupted)
        samples = model.predict([clean, corrupted])
    assert len(chain) == 3 and all(x.device.type == device.type for x in chain)
    assert not torch.allclose(chain[2], chain[0])
    assert len(samples) == len(clean) and isinstance(samples[0], DataSample)
    torch.testing.assert_close(samples[0].restoration_chain, torch.stack(chain, 1)[0])
    assert all(p.grad is None for p in model.parameters())
    on_cpu = model.cpu()
    with torch.no_grad():
        reference = on_cpu.restore(corrupted.cpu())
    for x, ref in zip(chain, reference):
        torch.testing.assert_close(x.cpu(), ref, rtol=1e-4, atol=1e-4)


def amp_options(device: torch.device) -> list:
    """``--amp`` (bf16) and ``--amp float16`` on CUDA; the CPU has no AmpOptimWrapper."""
    if device.type == 'cuda':
        return [['--amp'], ['--amp', 'float16']]
    return [[]]


def runner_from_train_tool(config: Path, work_dir: Path, options: list, name: str) -> Runner:
    tool = train_tool()
    args = tool.parse_args([str(config), '--work-dir', str(work_dir), *options])
    cfg = tool.merge_args(Config.fromfile(str(config)), args)
    cfg.experiment_name = name
    return Runner.from_cfg(cfg)


@pytest.mark.timeout(600)
def test_checkpoint_save_and_resume_continue_the_run(
    device, tmp_path, photo_crops_dir, monkeypatch
):
    """4 iterations straight equal 2 iterations, a checkpoint, and 2 more after resuming from
    it: weights, AdamW state, and on CUDA the AMP loss scale and the fp16 energy scales."""
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    config = write_config(
        tmp_path / 'cfg.py',
        data_root=photo_crops_dir,
        batch_size=4,
        max_iters=4,
        ckpt_interval=2,
        optimizer="dict(type='AdamW', lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)",
    )
    for index, options in enumerate(amp_options(device)):
        straight, resumed = tmp_path / f'straight{index}', tmp_path / f'resumed{index}'
        runner_from_train_tool(config, straight, options, f'straight{index}').train()
        stop_early = ['--cfg-options', 'train_cfg.max_iters=2']
        runner_from_train_tool(config, resumed, [*options, *stop_early], f'half{index}').train()
        resume = runner_from_train_tool(
            config, resumed, [*options, '--resume', str(resumed / 'iter_2.pth')], f'res{index}'
        )
        resume.train()
        assert type(resume.optim_wrapper).__name__ == (
            'EnergyAmpOptimWrapper' if options else 'OptimWrapper'
        )
        if options:
            expected = torch.bfloat16 if options == ['--amp'] else torch.float16
            assert resume.optim_wrapper.cast_dtype == expected
        final, reference = (torch.load(d / 'iter_4.pth') for d in (resumed, straight))
        assert final['meta']['iter'] == 4
        steps = {int(state['step']) for state in final['optimizer']['state'].values()}
        assert steps == {4}  # AdamW's state was restored, not restarted
        if options:
            assert final['optimizer']['loss_scaler'] == reference['optimizer']['loss_scaler']
            # the fp16 energy scales travel with the optimizer state too
            scales = final['optimizer']['energy_scalers']
            assert scales == reference['optimizer']['energy_scalers']
        for key, value in reference['state_dict'].items():
            torch.testing.assert_close(final['state_dict'][key], value, msg=key)
