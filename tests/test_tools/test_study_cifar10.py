"""The study tool on CIFAR-10 (the ViT against MAE, the ConvNeXt against SparK), end to end on
generated class folders of JPEG files."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cifar10_testing import write_class_folders

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools' / 'analysis'))
import study  # noqa: E402


def test_cifar10_study_runs_the_mix_with_knn_curve_restoration_and_downstream(tmp_path):
    """One tool for both datasets: ``--dataset cifar10`` pretrains the CIFAR-10 config's
    recipe (the paper's mix) on class folders of JPEGs, records the online k-NN curve (its
    splits follow the study's label and held-out counts) and a gain for each part of the mix
    on the test images, counts minutes without the k-NN evaluations, and fine-tunes and probes
    the checkpoint and scratch."""
    root = write_class_folders(tmp_path / 'cifar10', train_per_class=8, test_per_class=3)
    work = tmp_path / 'study'
    args = [
        '--dataset', 'cifar10', '--quick', '--epochs', '1', '--methods', 'energy', 'scratch',
        '--data-root', str(root), '--work-dir', str(work), '--workers', '0',
        '--train-images', '64', '--batch-size', '32',
        '--holdout-per-class', '2', '--labels-per-class', '3', '--probe-per-class', '4',
    ]  # fmt: skip
    assert study.main(args) == 0
    results = json.loads((work / 'results.json').read_text())
    assert set(results['pretraining']) == {'energy_mixed_e1_n64_b32'}  # no MAE: not asked
    record = results['pretraining']['energy_mixed_e1_n64_b32']
    assert record['settings']['pipeline'][0] == 'LoadImageFromFile'  # files, not arrays
    gains = record['restoration']
    assert set(gains) == {'random_box_mask', 'super_resolution', 'denoising', 'colorization'}
    for name, gain in gains.items():
        assert np.isfinite(gain['gain']) and 0 < gain['images'] <= 30, (name, gain)
    knn = record['knn']
    assert [h['epoch'] for h in knn] == [0, 1]
    assert all(0 <= h['knn_top1'] <= 100 for h in knn)
    evaluation_s = sum(h['eval_s'] for h in knn)
    assert evaluation_s > 0
    # the minutes are the k-NN hook's training seconds (its evaluations left out), as both
    # hooks kept them in the checkpoint
    meta = torch.load(record['checkpoint'], map_location='cpu', weights_only=True)['meta']
    assert meta[study.TRAIN_SECONDS] == meta['knn_evaluation']['train_s']
    assert record['minutes'] * 60 == pytest.approx(meta[study.TRAIN_SECONDS])
    assert knn[-1]['train_s'] <= record['minutes'] * 60
    hook_log = (work / 'energy_mixed_e1_n64_b32' / 'knn_history.json').read_text()
    assert json.loads(hook_log) == knn
    down = results['downstream']
    assert set(down) == {
        f'{source}/{task}'
        for source in ('scratch', 'energy_mixed_e1_n64_b32')
        for task in ('ft-k100', 'probe')
    }
    assert down['scratch/ft-k100']['settings']['labels_per_class'] == 3
    assert down['scratch/probe']['settings']['labels_per_class'] == 4
    for value in down.values():
        assert 0 <= value['val_top1'] <= 100 and 0 <= value['test_top1'] <= 100
    report_md = (work / 'results.md').read_text()
    assert report_md.startswith('# CIFAR-10 study') and 'energy mixed (64 images)' in report_md
    assert f'| {knn[0]["knn_top1"]:.1f} -> {knn[-1]["knn_top1"]:.1f} |' in report_md
    assert (work / 'results.png').stat().st_size > 0


def test_cifar10_candidates_set_the_mix_against_each_part_and_the_step_size():
    runs = study.candidates(1, None, study.DATASETS['cifar10'])
    energy = [run for run in runs if run.method == 'energy']
    assert energy[0] == study.Pretraining('energy', 1, corruption='mixed')  # the configs' own
    assert {run.corruption for run in energy} == {
        'mixed',
        'gridmask',
        'randmask-large',
        'sr4',
        'denoise',
        'colorize',
    }
    assert {run.target_rms for run in energy} == {None, 0.1, 0.3}
    for run in runs:  # every candidate has its config
        assert (REPO / run.config(study.DATASETS['cifar10'])).is_file(), run


def test_missing_cifar10_folders_are_a_clear_error(tmp_path, capsys):
    args = ['--dataset', 'cifar10', '--data-root', str(tmp_path), '--work-dir', str(tmp_path)]
    assert study.main(args) == 2
    error = capsys.readouterr().err
    assert 'lacks train, test (CIFAR-10)' in error and 'cifar10-images.tar.gz' in error


def test_the_convnet_study_sets_spark_against_energy_on_the_same_convnext(tmp_path):
    """``--dataset cifar10-convnext``: the baseline is SparK (its own method name, config and
    k-NN curve, its weight-decay schedule following the run's length) and the downstream
    configs are the ConvNeXt's."""
    root = write_class_folders(tmp_path / 'cifar10', train_per_class=8, test_per_class=3)
    work = tmp_path / 'study'
    args = [
        '--dataset', 'cifar10-convnext', '--quick', '--epochs', '1', '--methods', 'spark',
        '--data-root', str(root), '--work-dir', str(work), '--workers', '0',
        '--train-images', '64', '--batch-size', '32',
        '--holdout-per-class', '2', '--labels-per-class', '3', '--probe-per-class', '4',
    ]  # fmt: skip
    assert study.main(args) == 0
    results = json.loads((work / 'results.json').read_text())
    record = results['pretraining']['spark_e1_n64_b32']
    assert record['method'] == 'spark' and record['settings']['model'] == 'SparK'
    assert [h['epoch'] for h in record['knn']] == [0, 1]
    assert set(results['downstream']) == {'spark_e1_n64_b32/ft-k100', 'spark_e1_n64_b32/probe'}
    data = study.DATASETS['cifar10-convnext']
    cfg = study.pretraining_config(
        study.Pretraining('spark', 3), study.Settings(str(root), work, 0, data=data)
    )
    decay = [s for s in cfg.param_scheduler if s.type == 'CosineAnnealingWeightDecay']
    assert cfg.train_cfg.max_epochs == 3 and decay[0].end == 3
    finetune = study.downstream_config(
        'ft-k100', None, study.Settings(str(root), work, 0, data=data), work
    )
    assert finetune.model.backbone.type == 'ConvNeXt'


def test_a_method_of_another_dataset_is_refused_by_name(tmp_path, capsys):
    args = ['--dataset', 'cifar10-convnext', '--methods', 'mae', '--work-dir', str(tmp_path)]
    with pytest.raises(SystemExit):
        study.main(args)
    error = capsys.readouterr().err
    assert '--methods mae: not a method of --dataset cifar10-convnext' in error
    assert 'energy, spark, scratch' in error


def test_the_report_shows_the_curves_of_runs_still_training(tmp_path):
    """A long pretraining spans sessions: until it has a record, its k-NN curve so far
    (knn_history.json in its work dir) is listed in results.md and drawn in results.png."""
    import study_report

    history = [
        dict(epoch=0, iter=0, knn_top1=27.3, train_s=0.0, eval_s=5.0),
        dict(epoch=1, iter=195, knn_top1=26.25, train_s=2400.0, eval_s=5.0),
    ]
    (tmp_path / 'energy_mixed_e10').mkdir()
    (tmp_path / 'energy_mixed_e10' / 'knn_history.json').write_text(json.dumps(history))
    (tmp_path / 'mae_e10').mkdir()  # recorded: its curve is the record's, not listed again
    (tmp_path / 'mae_e10' / 'knn_history.json').write_text(json.dumps(history))
    mae = dict(method='mae', recipe='mae', epochs=10, minutes=34.5, images_per_s=241.0)
    results = dict(pretraining=dict(mae_e10=dict(mae, knn=history)), downstream={}, selection={})
    study_report.write_report(results, tmp_path, 'CIFAR-10')
    table = (tmp_path / 'results.md').read_text()
    assert '- energy_mixed_e10: epoch 1, 40.0 min, 27.3 -> 26.2' in table
    assert '- mae_e10' not in table and '| mae | 10 | 34.5 | 241 | 27.3 -> 26.2 |' in table
    assert (tmp_path / 'results.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
