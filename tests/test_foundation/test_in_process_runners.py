"""Runners built one after another in one process (as the tests and the Fashion-MNIST study
do) each log into their own work_dir."""

from demo_testing import tiny_demo_config
from mmengine.runner import Runner

import mmpretrain_ebm  # noqa: F401  (registers the hook, the algorithm, the corruptions)


def test_two_runners_of_one_config_within_a_second_log_apart(photo_crops_dir, tmp_path):
    runners = [
        Runner.from_cfg(tiny_demo_config(photo_crops_dir, tmp_path / name, max_iters=1))
        for name in ('first', 'second')
    ]
    for runner, name in zip(runners, ('first', 'second')):
        runner.logger.info(f'this is {name}')
    for name in ('first', 'second'):
        (log,) = (tmp_path / name).glob('*/*.log')
        assert f'this is {name}' in log.read_text()
