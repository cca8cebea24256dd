"""The study end to end on generated Fashion-MNIST idx files, and the split it relies on (the
CIFAR-10 datasets: test_study_cifar10.py)."""

import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from fashion_mnist_testing import write_idx_files
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmpretrain.datasets import FashionMNIST
from mmpretrain.registry import DATASETS, HOOKS, MODELS

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools' / 'analysis'))
import study  # noqa: E402
import study_report as report  # noqa: E402


@HOOKS.register_module(name='StudyTestSleepHook', force=True)
class SleepHook(Hook):
    """Sleeps ``seconds`` after each training epoch (before the checkpoint is saved)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def after_train_epoch(self, runner) -> None:
        time.sleep(self.seconds)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('fashion_mnist')
    write_idx_files(root, num_train=400, num_test=100, gz=False, seed=0)
    return root


def test_study_selects_on_validation_compares_and_resumes(data_root, tmp_path, monkeypatch):
    def two_energy_recipes_and_mae(epochs, train_images, data=None):
        runs = [
            study.Pretraining('energy', epochs, train_images=train_images),
            study.Pretraining(
                'energy', epochs, target_rms=0.1, alpha_lr_mult=100, train_images=train_images
            ),
            study.Pretraining('mae', epochs, train_images=train_images),
        ]
        return runs

    monkeypatch.setattr(study, 'candidates', two_energy_recipes_and_mae)
    work = tmp_path / 'study'
    args = [
        '--phase', 'all', '--quick', '--epochs', '1', '--full',
        '--data-root', str(data_root), '--work-dir', str(work), '--workers', '0',
        '--train-images', '256', '--batch-size', '64',
        '--holdout-per-class', '5', '--labels-per-class', '10', '--probe-per-class', '20',
    ]  # fmt: skip
    assert study.main(args) == 0
    results = json.loads((work / 'results.json').read_text())
    pre, down = results['pretraining'], results['downstream']

    # selection by validation top-1 of the short fine-tune, among the candidates only
    energy_ids = [
        'energy_gridmask_e1_n256_b64',
        'energy_gridmask_target_rms=0.1_alpha_lr_mult=100_e1_n256_b64',
    ]
    scores = [down[f'{run_id}/select']['val_top1'] for run_id in energy_ids]
    best = energy_ids[int(np.argmax(scores))]
    chosen = study.Pretraining(**results['selection']['energy'])
    assert chosen.run_id == best
    assert results['selection']['mae']['method'] == 'mae'

    # compare: scratch, both methods (reusing the selection's runs), MAE for energy's minutes
    recipe = chosen.recipe.replace(' ', '_')
    for run_id in (f'{recipe}_e1_n256_b64', 'mae_e1_n256_b64'):
        record = pre[run_id]
        assert record['images_per_s'] > 0 and record['minutes'] > 0
        assert Path(record['checkpoint']).is_file()
        for task in ('ft-k100', 'probe'):
            assert 0 <= down[f'{run_id}/{task}']['test_top1'] <= 100
    equal_time = [k for k, r in pre.items() if r['method'] == 'mae' and r['epochs'] > 1]
    for run_id in [f'{recipe}_e1_n256_b64', 'mae_e1_n256_b64', 'scratch'] + equal_time:
        assert f'{run_id}/ft-full' in down
    energy = pre[f'{recipe}_e1_n256_b64']
    assert energy['alpha'] > 0
    for run_id in energy_ids:  # alpha as the first batch set it, then trained
        assert (
            pre[run_id]['alpha_initial'] > 0
            and pre[run_id]['alpha'] != pre[run_id]['alpha_initial']
        )
    gains = energy['restoration']['grid_mask']
    assert np.isfinite(gains['gain'])
    assert gains['gain'] == pytest.approx(gains['psnr_last'] - gains['psnr_corrupted'])

    # report
    table = (work / 'results.md').read_text()
    assert 'none (scratch)' in table and f'| {chosen.recipe} (256 images) | 1 |' in table
    alpha = f'| {energy["alpha_initial"]:.3g} -> {energy["alpha"]:.3g} |'
    assert any(
        row.startswith(f'| {chosen.recipe} (256') and row.endswith(alpha)
        for row in table.splitlines()
    )
    assert (work / 'results.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'

    # resumable: a rerun trains nothing
    def no_training(cfg):
        raise AssertionError(f'retrained {cfg.work_dir}')

    monkeypatch.setattr(study, 'train', no_training)
    assert study.main(args) == 0
    assert json.loads((work / 'results.json').read_text()) == results


def test_a_killed_pretraining_resumes_at_its_last_epoch(data_root, tmp_path, monkeypatch):
    """Phase 'pretrain' of a 2-epoch run whose process died after epoch 1: it trains only
    epoch 2, from epoch 1's checkpoint, and no downstream task (and, with --no-equal-time,
    no MAE run for energy's minutes); a finished run that results.json lacks is refused."""
    settings = study.Settings(data_root=str(data_root), work_dir=tmp_path, workers=0)
    settings.batch_size = 64
    run = study.Pretraining('energy', 2, train_images=128, batch_size=64)
    killed = study.pretraining_config(run, settings)
    killed.train_cfg.max_epochs = 1  # the same schedule, stopped after epoch 1
    # the first process is slow (as on a busy machine): 6 s more in its epoch
    killed.custom_hooks.append(dict(type='StudyTestSleepHook', seconds=6.0))
    start = time.perf_counter()
    study.train(killed)
    first_process = time.perf_counter() - start
    work = Path(killed.work_dir)
    assert study.epochs_done(work) == 1
    after_one = torch.load(work / 'epoch_1.pth', map_location='cpu')['state_dict']

    args = [
        '--phase', 'pretrain', '--epochs', '2', '--data-root', str(data_root),
        '--work-dir', str(tmp_path), '--workers', '0', '--train-images', '128',
        '--batch-size', '64', '--no-equal-time',
    ]  # fmt: skip
    start = time.perf_counter()
    assert study.main(args) == 0
    second_process = time.perf_counter() - start
    results = json.loads((tmp_path / 'results.json').read_text())
    assert results['downstream'] == {}
    assert set(results['pretraining']) == {'mae_e2_n128_b64', run.run_id}  # no equal-time MAE
    record = results['pretraining'][run.run_id]
    assert record['resumed_after_epoch'] == 1 and record['epochs'] == 2
    # minutes: training time summed over both processes, as the checkpoint keeps it (not the
    # second process's epoch extrapolated to both)
    seconds = record['minutes'] * 60
    assert 6.0 < seconds < first_process + second_process
    kept = torch.load(work / 'epoch_2.pth', map_location='cpu', weights_only=True)['meta']
    assert seconds == pytest.approx(kept['study_train_seconds'])
    assert 'minutes_extrapolated' not in record
    assert record['images_per_s'] == pytest.approx(2 * 128 / seconds)
    logs = [log.read_text() for log in work.glob('*/*.log')]
    assert sum('resumed epoch: 1, iter: 2' in log for log in logs) == 1, logs
    final = torch.load(work / 'epoch_2.pth', map_location='cpu')
    assert final['meta']['epoch'] == 2
    assert not torch.equal(final['state_dict']['backbone.patch_embed.projection.weight'],
                           after_one['backbone.patch_embed.projection.weight'])  # fmt: skip

    del_record = json.loads((tmp_path / 'results.json').read_text())
    del del_record['pretraining'][run.run_id]
    (tmp_path / 'results.json').write_text(json.dumps(del_record))
    with pytest.raises(
        RuntimeError, match='holds a finished run .epoch 2. that results.json lacks'
    ):
        study.Study(settings).pretrain(run)


def test_evaluate_runs_beside_pretrain_in_one_work_dir(data_root, tmp_path, monkeypatch, capsys):
    """Phase 'evaluate' fine-tunes and probes scratch and every pretraining 'pretrain'
    recorded, pretraining nothing; a process that loaded results.json before the others saved
    keeps their records when it saves (both phases share the work dir)."""
    common = [
        '--quick', '--epochs', '1', '--data-root', str(data_root), '--work-dir', str(tmp_path),
        '--workers', '0', '--train-images', '128', '--batch-size', '64',
        '--holdout-per-class', '5', '--labels-per-class', '10', '--probe-per-class', '20',
    ]  # fmt: skip
    beside = study.Study(study.Settings(data_root=str(data_root), work_dir=tmp_path, workers=0))
    assert study.main(['--phase', 'pretrain', '--no-equal-time', *common]) == 0
    pretrained = json.loads((tmp_path / 'results.json').read_text())['pretraining']
    assert set(pretrained) == {'mae_e1_n128_b64', 'energy_gridmask_e1_n128_b64'}

    def no_pretraining(*args):
        raise AssertionError('evaluate pretrained')

    monkeypatch.setattr(study, 'pretraining_config', no_pretraining)
    # two processes can split the sources; a source results.json lacks is an error naming it
    assert study.main(['--phase', 'evaluate', '--sources', 'mae_e1_n1280', *common]) == 2
    assert '--sources mae_e1_n1280: not in' in capsys.readouterr().err
    only_mae = ['--phase', 'evaluate', '--sources', 'mae_e1_n128_b64', '--seeds', '0', '1']
    assert study.main([*only_mae, *common]) == 0
    down = json.loads((tmp_path / 'results.json').read_text())['downstream']
    assert set(down) == {
        f'mae_e1_n128_b64/{task}' for task in ('ft-k100', 'probe', 'ft-k100-seed1')
    }
    assert '| mae_e1_n128_b64 | ft-k100 | 2 |' in (tmp_path / 'results.md').read_text()
    assert study.main(['--phase', 'evaluate', *common]) == 0
    down = json.loads((tmp_path / 'results.json').read_text())['downstream']
    sources = ['scratch', *pretrained]
    expected = {f'{source}/{task}' for source in sources for task in ('ft-k100', 'probe')}
    assert set(down) == expected | {'mae_e1_n128_b64/ft-k100-seed1'}

    elsewhere = dict(source='elsewhere', task='probe', val_top1=1.0, test_top1=2.0, minutes=0)
    beside.results['downstream']['elsewhere/probe'] = elsewhere
    beside.save()
    merged = json.loads((tmp_path / 'results.json').read_text())
    assert merged['pretraining'] == pretrained
    assert merged['downstream'] == {**down, 'elsewhere/probe': elsewhere}


def test_fine_tune_starts_from_the_pretrained_backbone(data_root, tmp_path):
    """The downstream config loads the checkpoint's ``backbone.`` weights, every one of them."""
    settings = study.Settings(data_root=str(data_root), work_dir=tmp_path, workers=0)
    run = study.Pretraining('energy', 1, train_images=64, batch_size=32)
    settings.batch_size = 32
    cfg = study.pretraining_config(run, settings)
    study.train(cfg)
    checkpoint = Path(cfg.work_dir) / 'epoch_1.pth'
    state = torch.load(checkpoint, map_location='cpu')['state_dict']
    backbone = {k[len('backbone.') :]: v for k, v in state.items() if k.startswith('backbone.')}
    for task in ('ft-k100', 'probe'):
        down = study.downstream_config(task, str(checkpoint), settings, tmp_path / task)
        init_default_scope('mmpretrain')
        model = MODELS.build(down.model)
        model.init_weights()
        loaded = model.backbone.state_dict()
        assert loaded.keys() == backbone.keys()
        for key, value in backbone.items():
            assert torch.equal(loaded[key], value), key
    scratch = study.downstream_config('ft-k100', None, settings, tmp_path / 'scratch')
    assert scratch.model.backbone.init_cfg is None


def test_a_seeded_task_redraws_the_labelled_and_held_out_images(data_root, tmp_path):
    """'ft-k100-seed1': seed 1 for the run and both parts of the split, which stay disjoint;
    seed 0's labelled images differ from seed 1's. A task not of that form is refused."""
    settings = study.Settings(data_root=str(data_root), work_dir=tmp_path, workers=0)
    settings.holdout_per_class = 5
    settings.labels_per_class['ft-k100'] = 10
    init_default_scope('mmpretrain')
    picked = {}
    for task in ('ft-k100', 'ft-k100-seed1'):
        cfg = study.downstream_config(task, None, settings, tmp_path / task)
        assert cfg.train_cfg.max_epochs == 100  # the base task's schedule
        parts = [DATASETS.build(cfg[f'{p}_dataloader'].dataset) for p in ('train', 'val')]
        images = [{p.get_data_info(i)['img'].tobytes() for i in range(len(p))} for p in parts]
        assert len(images[0]) == 100 and len(images[1]) == 50
        assert not images[0] & images[1]
        picked[task] = (cfg.randomness.seed, images[0])
    assert picked['ft-k100'][0] == 0 and picked['ft-k100-seed1'][0] == 1
    assert picked['ft-k100'][1] != picked['ft-k100-seed1'][1]
    with pytest.raises(ValueError, match="unknown downstream task 'ft-k100-s1'"):
        study.downstream_config('ft-k100-s1', None, settings, tmp_path / 'bad')


@pytest.mark.parametrize('alpha_lr_mult', [None, 100.0])
def test_alpha_lr_mult_reaches_the_optimizer(tmp_path, alpha_lr_mult):
    """The candidate's multiplier is alpha's lr in the optimizer mmengine builds (weight
    decay stays off); every other parameter keeps the base lr."""
    from mmengine.optim import build_optim_wrapper

    init_default_scope('mmpretrain')
    settings = study.Settings(data_root=str(tmp_path), work_dir=tmp_path, workers=0)
    run = study.Pretraining('energy', 1, alpha_lr_mult=alpha_lr_mult)
    assert ('alpha_lr_mult=100' in run.run_id) == (alpha_lr_mult is not None)
    cfg = study.pretraining_config(run, settings)
    model = MODELS.build(cfg.model)
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    base = cfg.optim_wrapper.optimizer.lr
    (alpha_group,) = [
        g for g in optimizer.param_groups if any(p is model.alpha for p in g['params'])
    ]
    assert alpha_group['lr'] == pytest.approx(base * (alpha_lr_mult or 1))
    assert alpha_group['weight_decay'] == 0
    others = [g['lr'] for g in optimizer.param_groups if g is not alpha_group]
    assert others and all(lr == pytest.approx(base) for lr in others)


def test_seed_values_are_one_sources_runs_of_one_task_over_seeds():
    """The plot's error bars: the unseeded run and every '-seed<N>' of that task and source."""
    down = {
        'a/ft-k100': dict(test_top1=70.0),
        'a/ft-k100-seed1': dict(test_top1=72.0),
        'a/ft-k100-seed12': dict(test_top1=71.0),
        'a/probe': dict(test_top1=60.0),
        'a/ft-full': dict(test_top1=80.0),
        'ab/ft-k100-seed1': dict(test_top1=10.0),
    }
    assert sorted(report.seed_values(down, 'a', 'ft-k100')) == [70.0, 71.0, 72.0]
    assert report.seed_values(down, 'a', 'probe') == [60.0]
    assert report.seed_values(down, 'b', 'ft-k100') == []


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    assert study.main(['--data-root', str(tmp_path), '--work-dir', str(tmp_path / 'w')]) == 2
    assert 'lacks train-images-idx3-ubyte' in capsys.readouterr().err


def test_fashion_mnist_reads_the_generated_files(data_root):
    test = FashionMNIST(data_root=str(data_root), test_mode=True, download=False)
    assert len(test) == 100


def test_selection_uses_validation_scores_measured_elsewhere(tmp_path, monkeypatch):
    """Candidates measured on another machine count by their validation top-1 (not test),
    only at this budget and with these settings: a score of a candidate's recipe at another
    budget (--quick's 5,120 images) or after another select fine-tune is ignored."""
    ran = []
    monkeypatch.setattr(study.Study, 'evaluate', lambda self, run, tasks: ran.append(run))
    settings = study.Settings(data_root=str(tmp_path), work_dir=tmp_path / 'w', workers=0)
    energy = study.candidates(1, 12800)
    select = study.downstream_settings(study.downstream_config('select', None, settings, tmp_path))
    imported = dict(pretraining={}, downstream={})

    def measured(run, val, test, select_settings=select):
        pretraining = study.pretraining_settings(study.pretraining_config(run, settings))
        imported['pretraining'][run.run_id] = dict(recipe=run.recipe, settings=pretraining)
        imported['downstream'][f'{run.run_id}/select'] = dict(
            val_top1=val, test_top1=test, settings=select_settings
        )

    measured(energy[0], 50.0, 60.0)
    measured(energy[1], 55.0, 40.0)
    measured(replace(energy[2], train_images=5120), 90.0, 90.0)  # another budget
    measured(energy[3], 95.0, 95.0, dict(select, epochs=select['epochs'] // 3))
    path = tmp_path / 'other.json'
    path.write_text(json.dumps(imported))
    runner = study.Study(settings)
    runner.select(1, 12800, methods=['mae'], imported=[str(path)])
    assert {run.method for run in ran} == {'mae'}  # energy candidates are not rerun
    assert study.Pretraining(**runner.results['selection']['energy']) == energy[1]
    scores = runner.results['selection_scores']['energy']
    assert [(s['run_id'], s['val_top1']) for s in scores] == [
        (energy[0].run_id, 50.0),
        (energy[1].run_id, 55.0),
    ]
    assert 'mae' not in runner.results['selection']  # none measured


def test_a_record_of_other_settings_is_refused_not_returned(data_root, tmp_path, monkeypatch):
    """A downstream record is reused only for the settings it was measured with: a rerun in
    the same work dir with another schedule, number of labels or held-out split is refused
    by name (before, it returned the old numbers as new)."""
    settings = study.Settings(data_root=str(data_root), work_dir=tmp_path, workers=0)
    settings.ft_epochs['ft-k100'] = 1
    settings.labels_per_class['ft-k100'] = 10
    settings.holdout_per_class = 5
    first = study.Study(settings).downstream('scratch', None, 'ft-k100')
    assert first['settings']['epochs'] == 1 and first['settings']['labels_per_class'] == 10
    assert 0 <= first['test_top1'] <= 100

    def no_training(cfg):
        raise AssertionError(f'trained {cfg.work_dir}')

    monkeypatch.setattr(study, 'train', no_training)
    assert study.Study(settings).downstream('scratch', None, 'ft-k100') == first  # the same
    for change, difference in [
        (dict(ft_epochs={'ft-k100': 2}), 'epochs: recorded 1, this run 2'),
        (dict(labels_per_class={'ft-k100': 20}), 'labels_per_class: recorded 10, this run 20'),
        (dict(holdout_per_class=6), 'holdout_per_class: recorded 5, this run 6'),
    ]:
        other = replace(settings, **change)
        message = f"downstream record 'scratch/ft-k100' measured with other settings .{difference}"
        with pytest.raises(study.RecordMismatchError, match=message):
            study.Study(other).downstream('scratch', None, 'ft-k100')
    # the command line says so and stops
    args = [
        '--phase', 'evaluate', '--sources', 'scratch', '--data-root', str(data_root),
        '--work-dir', str(tmp_path), '--workers', '0', '--ft-epochs', '3',
        '--labels-per-class', '10', '--holdout-per-class', '5',
    ]  # fmt: skip
    assert study.main(args) == 2


def test_a_pretraining_at_another_batch_size_is_another_run(data_root, tmp_path):
    """A half-finished run at batch 64 is not resumed by a run at batch 32: that one has its
    own run id and work dir and starts at epoch 0 (before, it resumed the batch-64 run)."""
    settings = study.Settings(data_root=str(data_root), work_dir=tmp_path, workers=0)
    settings.batch_size = 64
    run = settings.sized(study.Pretraining('mae', 2, train_images=128))
    half = study.pretraining_config(run, settings)
    half.train_cfg.max_epochs = 1
    study.train(half)
    args = [
        '--phase', 'pretrain', '--epochs', '2', '--data-root', str(data_root),
        '--work-dir', str(tmp_path), '--workers', '0', '--train-images', '128',
        '--batch-size', '32', '--no-equal-time',
    ]  # fmt: skip
    assert study.main(args) == 0
    record = json.loads((tmp_path / 'results.json').read_text())['pretraining']['mae_e2_n128_b32']
    assert record['resumed_after_epoch'] == 0 and record['settings']['batch_size'] == 32
    assert study.epochs_done(Path(half.work_dir)) == 1  # the batch-64 run, untouched
    assert Path(half.work_dir).name == 'mae_e2_n128_b64'
    # a started run whose settings differ (as written when the study starts it; here its
    # batch, by hand) is refused, not resumed
    started = Path(half.work_dir) / 'study_settings.json'
    wanted = study.pretraining_settings(study.pretraining_config(run, settings))
    started.write_text(json.dumps(dict(wanted, batch_size=16)))
    with pytest.raises(study.RecordMismatchError, match='batch_size: recorded 16, this run 64'):
        study.Study(settings).pretrain(run)


def test_a_newer_selection_is_not_overwritten_by_an_older_copy(tmp_path):
    """Two processes of one work dir: one loaded results.json, another then saved a new
    selection; when the first saves its own new record, the newer selection stays."""
    settings = study.Settings(data_root=str(tmp_path), work_dir=tmp_path, workers=0)
    first = study.Study(settings)
    first.results['selection']['energy'] = asdict(study.Pretraining('energy', 1))
    first.save()
    older = study.Study(settings)  # loads the grid-masking selection
    newer = study.Study(settings)
    newer.results['selection']['energy'] = asdict(
        study.Pretraining('energy', 1, corruption='mixed')
    )
    newer.save()
    record = dict(source='scratch', task='probe', val_top1=1.0, test_top1=2.0, minutes=0)
    older.results['downstream']['scratch/probe'] = record
    older.save()
    on_disk = json.loads((tmp_path / 'results.json').read_text())
    assert study.Pretraining(**on_disk['selection']['energy']).corruption == 'mixed'
    assert on_disk['downstream'] == {'scratch/probe': record}
    assert older.results == on_disk  # and the older process now sees the newer selection


def test_a_run_resumed_from_a_checkpoint_without_its_time_says_its_minutes_are_extrapolated(
    data_root, tmp_path
):
    """A checkpoint saved before checkpoints kept the training time: the minutes are the
    resumed process's epochs extrapolated to all, and the record and the report say so."""
    settings = study.Settings(data_root=str(data_root), work_dir=tmp_path, workers=0)
    settings.batch_size = 64
    run = settings.sized(study.Pretraining('mae', 2, train_images=128))
    half = study.pretraining_config(run, settings)
    half.train_cfg.max_epochs = 1
    study.train(half)
    path = Path(half.work_dir) / 'epoch_1.pth'
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    assert checkpoint['meta'].pop('study_train_seconds') > 0
    torch.save(checkpoint, path)
    runner = study.Study(settings)
    record = runner.pretrain(run)
    assert record['resumed_after_epoch'] == 1 and record['minutes_extrapolated'] is True
    final = torch.load(Path(half.work_dir) / 'epoch_2.pth', map_location='cpu', weights_only=True)
    assert final['meta']['study_train_seconds'] is None  # unknown from then on
    row = next(r for r in (tmp_path / 'results.md').read_text().splitlines() if '| mae' in r)
    assert f'| {record["minutes"]:.1f} (extrapolated) |' in row


def test_evaluate_runs_the_tasks_asked_for_in_the_order_of_the_sources(
    data_root, tmp_path, monkeypatch
):
    """``--tasks`` keeps some downstream tasks (the 1,000-label fine-tunes with their seeds
    before the long all-label one, which --long adds), ``--sources`` sets the order."""
    (tmp_path / 'results.json').write_text(
        json.dumps(
            dict(
                pretraining={
                    'b': dict(
                        checkpoint='b.pth',
                        method='mae',
                        recipe='mae',
                        epochs=1,
                        minutes=1.0,
                        images_per_s=1.0,
                    )
                },
                downstream={},
                selection={},
            )
        )
    )
    calls = []
    monkeypatch.setattr(
        study.Study, 'downstream', lambda self, source, ckpt, task: calls.append((source, task))
    )
    args = ['--phase', 'evaluate', '--long', '--data-root', str(data_root)]
    args += ['--work-dir', str(tmp_path), '--seeds', '1', '--sources', 'b', 'scratch']
    assert study.main([*args, '--tasks', 'ft-k100']) == 0
    assert calls == [
        ('b', 'ft-k100'),
        ('b', 'ft-k100-seed1'),
        ('scratch', 'ft-k100'),
        ('scratch', 'ft-k100-seed1'),
    ]
    calls.clear()
    assert study.main(args) == 0  # --long: every task
    assert [task for source, task in calls if source == 'b'] == [
        'ft-k100',
        'probe',
        'ft-k100-seed1',
        'ft-full',
    ]
