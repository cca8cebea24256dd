"""weights_only loads of HistoryBuffers: runner state restores, forged statistics are refused."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import mmpretrain_ebm  # noqa: F401  (allow-lists runner checkpoint types for torch.load)


class Getattr:
    """Pickles as ``getattr(HistoryBuffer, name)``, like mmengine's statistics methods."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self) -> tuple:
        return getattr, (HistoryBuffer, self.name)


@pytest.fixture
def registry(monkeypatch) -> dict:
    """A copy of HistoryBuffer's class-level statistics registry, restored after the test."""
    monkeypatch.setattr(
        HistoryBuffer, '_statistics_methods', dict(HistoryBuffer._statistics_methods)
    )
    return dict(HistoryBuffer._statistics_methods)


def save_forged_buffer(path: Path, statistics_methods: dict, monkeypatch) -> None:
    """Save a HistoryBuffer whose pickled state carries ``statistics_methods``."""
    state = dict(
        max_length=10,
        _log_history=np.array([1.0]),
        _count_history=np.array([1]),
        statistics_methods=statistics_methods,
    )
    with monkeypatch.context() as patch:
        patch.setattr(HistoryBuffer, '__getstate__', lambda self: state)
        torch.save([HistoryBuffer([1.0], [1])], path)


@pytest.mark.usefixtures('registry')
def test_message_hub_state_round_trips_as_plain_history_buffers(tmp_path):
    hub = MessageHub('allowlist_round_trip')
    for value in (1.0, 3.0):
        hub.update_scalar('train/loss', value)
    hub.update_info('iter', np.int64(7), resumed=True)
    torch.save({'message_hub': hub.state_dict()}, tmp_path / 'hub.pth')
    before = dict(HistoryBuffer._statistics_methods)

    state = torch.load(tmp_path / 'hub.pth', weights_only=True)['message_hub']
    buffer = state['log_scalars']['train/loss']
    assert type(buffer) is HistoryBuffer
    assert buffer.statistics('mean') == 2.0 and buffer.statistics('max') == 3.0
    assert state['runtime_info']['iter'] == 7
    assert HistoryBuffer._statistics_methods == before
    # The restored buffer saves and loads again like any other.
    torch.save(buffer, tmp_path / 'again.pth')
    assert torch.load(tmp_path / 'again.pth', weights_only=True).current() == 3.0


@pytest.mark.parametrize(
    'statistics_methods, refused',
    [
        ({'__init__': 0, 'register_statistics': 0}, "'__init__'"),  # new names in the registry
        ({'mean': Getattr('max')}, "'mean'"),  # 'mean' rebound to max
        ({'mean': Getattr('mean'), 'evil': Getattr('max')}, "'evil'"),
    ],
)
def test_forged_statistics_are_refused_and_change_nothing(
    tmp_path, monkeypatch, registry, statistics_methods, refused
):
    save_forged_buffer(tmp_path / 'forged.pth', statistics_methods, monkeypatch)
    with pytest.raises(pickle.UnpicklingError, match=f'statistic {refused}'):
        torch.load(tmp_path / 'forged.pth', weights_only=True)
    assert HistoryBuffer._statistics_methods == registry
    assert HistoryBuffer([1.0, 3.0], [1, 1]).statistics('mean') == 2.0


@pytest.mark.parametrize('name', ['__init__', 'register_statistics', '_statistics_methods'])
def test_getattr_resolves_only_mmengine_statistics(tmp_path, name):
    torch.save([Getattr('mean'), Getattr(name)], tmp_path / 'getattr.pth')
    with pytest.raises(pickle.UnpicklingError, match=f'getattr.*{name!r}'):
        torch.load(tmp_path / 'getattr.pth', weights_only=True)


def test_unknown_buffer_attributes_are_refused(tmp_path, monkeypatch, registry):
    state = dict(
        max_length=10,
        _log_history=np.array([1.0]),
        _count_history=np.array([1]),
        statistics=np.array([0.0]),
    )
    with monkeypatch.context() as patch:
        patch.setattr(HistoryBuffer, '__getstate__', lambda self: state)
        torch.save(HistoryBuffer([1.0], [1]), tmp_path / 'shadow.pth')
    with pytest.raises(pickle.UnpicklingError, match='unknown attributes \\["\'statistics\'"\\]'):
        torch.load(tmp_path / 'shadow.pth', weights_only=True)
