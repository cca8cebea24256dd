"""tools/dataset_converters/prepare_fashion_mnist.py through its command line: it writes the
files that mmpretrain's FashionMNIST reads, refuses broken sources with an error naming the
file, and leaves a complete output folder as it is (tiny generated idx files)."""

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fashion_mnist_testing import idx_bytes, write_idx_files
from mmpretrain.datasets import FashionMNIST

ROOT = Path(__file__).parents[2]
TOOL = ROOT / 'tools' / 'dataset_converters' / 'prepare_fashion_mnist.py'
NAMES = (
    'train-images-idx3-ubyte',
    'train-labels-idx1-ubyte',
    't10k-images-idx3-ubyte',
    't10k-labels-idx1-ubyte',
)
DEBIAN = Path('/usr/share/datasets/fashion-mnist')


def run(src: Path, dst: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), str(src), str(dst), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def load(dst: Path, test: bool) -> tuple:
    """Images ``N x 28 x 28`` and labels ``N`` as mmpretrain's FashionMNIST reads them."""
    dataset = FashionMNIST(
        data_root=str(dst), split='test' if test else 'train', test_mode=test, download=False
    )
    infos = [dataset.get_data_info(index) for index in range(len(dataset))]
    return np.stack([info['img'] for info in infos]), np.array([info['gt_label'] for info in infos])


def mtimes(folder: Path) -> dict:
    return {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}


@pytest.mark.parametrize('gz', [True, False])
def test_fashion_mnist_reads_the_converted_files(tmp_path, gz):
    src, dst = tmp_path / 'src', tmp_path / 'out' / 'fashion_mnist'
    arrays = write_idx_files(src, num_train=30, num_test=20, gz=gz, seed=1)
    result = run(src, dst)
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in dst.iterdir()) == sorted(NAMES)
    for name in NAMES:
        assert f'wrote {dst / name} ' in result.stdout
    for split, test in (('train', False), ('test', True)):
        images, labels = load(dst, test)
        assert images.dtype == np.uint8 and images.shape == arrays[split][0].shape
        np.testing.assert_array_equal(images, arrays[split][0])
        np.testing.assert_array_equal(labels, arrays[split][1])
    assert np.bincount(labels).tolist() == [2] * 10


def test_rerun_writes_nothing_and_other_contents_need_overwrite(tmp_path):
    src, dst = tmp_path / 'src', tmp_path / 'dst'
    write_idx_files(src, num_train=20, num_test=10, seed=0)
    assert run(src, dst).returncode == 0
    before = mtimes(dst)
    again = run(src, dst)
    assert again.returncode == 0, again.stderr
    assert 'already complete' in again.stdout and 'wrote' not in again.stdout
    assert mtimes(dst) == before
    # other images under the same names: refused, then replaced with --overwrite
    new = write_idx_files(src, num_train=20, num_test=10, seed=5)
    refused = run(src, dst)
    assert refused.returncode == 1
    assert 'other contents' in refused.stderr and '--overwrite' in refused.stderr
    assert str(dst / 'train-images-idx3-ubyte') in refused.stderr
    assert mtimes(dst) == before
    replaced = run(src, dst, '--overwrite')
    assert replaced.returncode == 0, replaced.stderr
    assert f'replaced {dst / "t10k-images-idx3-ubyte"}' in replaced.stdout
    np.testing.assert_array_equal(load(dst, test=True)[0], new['test'][0])
    np.testing.assert_array_equal(load(dst, test=False)[1], new['train'][1])


def labels_file(labels) -> bytes:
    return idx_bytes(np.asarray(labels, dtype=np.uint8))


# (file to break, how, words the error must hold); sources are plain idx files of 20 + 10
BROKEN = {
    'missing': ('t10k-labels-idx1-ubyte', lambda data: None, 'missing t10k-labels-idx1-ubyte'),
    'truncated': (
        'train-images-idx3-ubyte',
        lambda data: data[:-100],
        'truncated: its header promises 20x28x28 images (15696 bytes un-gzipped), '
        'the file has 15596 bytes',
    ),
    'trailing': ('t10k-labels-idx1-ubyte', lambda data: data + b'\0', 'has trailing bytes'),
    'header only half': ('train-labels-idx1-ubyte', lambda data: data[:6], 'shorter than'),
    'wrong magic': (
        'train-labels-idx1-ubyte',
        lambda data: (2051).to_bytes(4, 'big') + data[4:],
        'magic number 2051, expected 2049 (labels file)',
    ),
    'labels as images': (
        't10k-images-idx3-ubyte',
        lambda data: labels_file(range(10)),
        'magic number 2049, expected 2051 (images file)',
    ),
    'count mismatch': (
        't10k-labels-idx1-ubyte',
        lambda data: labels_file(np.arange(9) % 10),
        'holds 10 images but',
    ),
    'label 10': ('train-labels-idx1-ubyte', lambda data: labels_file([10] * 20), 'label 10'),
    'not 28x28': (
        't10k-images-idx3-ubyte',
        lambda data: idx_bytes(np.zeros((10, 32, 32), np.uint8)),
        'images of 32x32, expected 28x28',
    ),
}


@pytest.mark.parametrize('case', list(BROKEN))
def test_broken_sources_stop_with_the_file_and_the_fault(tmp_path, case):
    name, change, message = BROKEN[case]
    src, dst = tmp_path / 'src', tmp_path / 'dst'
    write_idx_files(src, num_train=20, num_test=10, gz=False)
    path = src / name
    data = change(path.read_bytes())
    if data is None:
        path.unlink()
    else:
        path.write_bytes(data)
    result = run(src, dst)
    assert result.returncode == 1
    assert message in result.stderr and str(src) in result.stderr
    if case != 'missing':
        assert str(path) in result.stderr
    assert not dst.exists(), 'nothing may be written from a broken source'


def test_broken_gzip_and_disagreeing_copies_are_refused(tmp_path):
    src, dst = tmp_path / 'src', tmp_path / 'dst'
    write_idx_files(src, num_train=20, num_test=10, gz=True)
    gz_path = src / 'train-images-idx3-ubyte.gz'
    full = gz_path.read_bytes()
    gz_path.write_bytes(full[: len(full) // 2])
    result = run(src, dst)
    assert result.returncode == 1
    assert f'{gz_path}: not a complete gzip file' in result.stderr
    # a plain copy beside the gz one: used when both agree, refused when they differ
    gz_path.write_bytes(full)
    plain = src / 'train-images-idx3-ubyte'
    plain.write_bytes(gzip.decompress(full))
    assert run(src, dst).returncode == 0
    plain.write_bytes(plain.read_bytes()[:-1] + b'\1')
    result = run(src, tmp_path / 'other')
    assert result.returncode == 1
    assert f'{plain} and {gz_path} differ' in result.stderr


@pytest.mark.skipif(not DEBIAN.is_dir(), reason='the Debian package dataset-fashion-mnist')
def test_the_debian_package_converts_to_the_real_test_split(tmp_path):
    result = run(DEBIAN, tmp_path)
    assert result.returncode == 0, result.stderr
    images, labels = load(tmp_path, test=True)
    assert images.shape == (10000, 28, 28)
    assert np.bincount(labels).tolist() == [1000] * 10
    # Fashion-MNIST's published pixel mean and standard deviation (0.2860, 0.3530)
    assert abs(images.mean() / 255 - 0.286) < 0.002 and abs(images.std() / 255 - 0.353) < 0.002
