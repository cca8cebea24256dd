"""tools/analysis/restoration_summary.py (the end of ``make demo``) on a real tiny run of the
demo config: it prints the gain of the last step of each corruption at the last drawing, equal
to the PSNR of the final weights' restoration chains, one line naming those below the visible
gain, and the run's figures."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

from demo_testing import REPO, tiny_demo_config
from mmengine.runner import Runner

import mmpretrain_ebm  # noqa: F401  (registers the hook, the algorithm, the corruptions)
from mmpretrain_ebm.engine import RestorationVisualizationHook
from mmpretrain_ebm.visualization import mean_psnr, restoration_chains

TOOL = REPO / 'tools' / 'analysis' / 'restoration_summary.py'
LINE = re.compile(r'^  (\S+) +([+-]\d+\.\d\d) dB  \((\d+\.\d\d) -> (\d+\.\d\d)\)$')


def run_tool(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, timeout=60
    )


def tiny_demo_run(data_dir: Path, work_dir: Path) -> Runner:
    """The demo config with a 1-layer ViT at 32 px, 2 iterations, its held-out hook on 2 of
    ``data_dir``'s images."""
    cfg = tiny_demo_config(data_dir, work_dir, max_iters=2)
    cfg.default_hooks.checkpoint.interval = 2
    # the held-out hook (the name the tool reads by default); the training images' one is left out
    cfg.custom_hooks = [h for h in cfg.custom_hooks if h.get('name') != 'restoration_train']
    (held_out,) = [h for h in cfg.custom_hooks if h.get('name') == 'restoration_held_out']
    held_out.update(num_images=2, interval=1)
    held_out.dataset.update(data_root=str(data_dir), data_prefix='')
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_summary_prints_the_last_steps_gain_per_corruption_and_the_figures(
    photo_crops_dir, tmp_path
):
    work_dir = tmp_path / 'work'
    runner = tiny_demo_run(photo_crops_dir, work_dir)
    hook = next(h for h in runner.hooks if isinstance(h, RestorationVisualizationHook))
    # the held-out chains of the final weights, computed here again
    chains = restoration_chains(runner.model, hook.image_paths, hook.corruptions, 32, hook.seed)
    expected = mean_psnr(chains)

    result = run_tool(work_dir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        'restoration_held_out at iteration 2: gain of step 2 over the corrupted input '
        '(mean PSNR in dB)'
    )
    rows = [LINE.match(line) for line in lines[1:5]]
    assert all(rows), lines
    assert [row[1] for row in rows] == [chain.corruption for chain in chains]
    assert len(rows) == 4  # the demo's mix: masking, super-resolution, denoising, colorization
    below = [row[1] for row in rows if float(row[2]) < 1.0]
    assert below  # two iterations restore nothing visibly
    assert lines[5:-2] == ['not visibly restored (gain below +1.00 dB): ' + ', '.join(below)]
    assert run_tool(work_dir, '--min-gain', '-100').stdout.splitlines() == lines[:5] + lines[-2:]
    for row in rows:
        corrupted, step2 = expected[f'{row[1]}/psnr_corrupted'], expected[f'{row[1]}/psnr_step2']
        assert abs(float(row[2]) - (step2 - corrupted)) <= 0.005 + 1e-9
        assert float(row[3]) == round(corrupted, 2) and float(row[4]) == round(step2, 2)
    figures = ['restoration_held_out.png', 'training_curves.png']
    assert lines[-2] == 'figures: ' + ', '.join(str(work_dir / name) for name in figures)
    assert lines[-1] == f'checkpoint: {work_dir / "iter_2.pth"}'
    assert (work_dir / 'iter_2.pth').is_file()

    # a newer run of the same work directory that stopped before its first drawing is skipped;
    # a named hook that never drew is refused with the names that did
    run_dir = next(work_dir.glob('*/vis_data/scalars.json')).parents[1]
    newer = work_dir / '99991231_235959' / 'vis_data'
    newer.mkdir(parents=True)
    training_rows = [
        line
        for line in (run_dir / 'vis_data' / 'scalars.json').read_text().splitlines()
        if '/psnr_' not in line
    ]
    assert len(training_rows) == 2  # loss, alpha, ... of each iteration
    (newer / 'scalars.json').write_text('\n'.join(training_rows) + '\n')
    assert run_tool(work_dir).stdout == result.stdout
    refused = run_tool(work_dir, '--name', 'restoration_train')
    assert refused.returncode == 1 and refused.stdout == ''
    assert refused.stderr == (
        f'restoration_summary.py: error: no run in {work_dir} logged restoration PSNR named '
        "'restoration_train'; names logged: restoration_held_out\n"
    )


def test_a_folder_without_a_run_is_named_in_the_error(tmp_path):
    result = run_tool(tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        f'restoration_summary.py: error: no */vis_data/scalars.json in {tmp_path}: not the work '
        "directory of a run with mmengine's LocalVisBackend\n"
    )
    shutil.rmtree(tmp_path)
    assert run_tool(tmp_path).returncode == 1  # a missing folder: the same error
