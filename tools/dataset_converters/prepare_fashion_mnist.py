"""Check the four Fashion-MNIST idx files and write them un-gzipped where mmpretrain reads them.

    python tools/dataset_converters/prepare_fashion_mnist.py \
        [SRC (default /usr/share/datasets/fashion-mnist)] [DST (default data/fashion_mnist)] \
        [--overwrite]

SRC holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``
and ``t10k-labels-idx1-ubyte``, each gzipped (``.gz``, as the Debian package
``dataset-fashion-mnist`` and the dataset's site ship them) or not. DST receives them
un-gzipped under those names: the ``data_root`` of mmpretrain's ``FashionMNIST``, used with
``download=False`` (mmpretrain 1.2.0 reads the t10k files when ``test_mode=True`` and the train
files otherwise, whatever ``split`` says: set both). Every file is checked before anything is
written: its magic number (2051 images, 2049 labels), 28x28 images, a size that matches its
header, labels 0..9 and as many labels as images. A DST file with the same contents is left as
it is; one with other contents stops the tool unless ``--overwrite``.
"""

import argparse
import gzip
import os
import sys
import zlib
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

DEFAULT_SRC = Path('/usr/share/datasets/fashion-mnist')
DEFAULT_DST = Path('data/fashion_mnist')
PREFIXES = ('train', 't10k')  # the training and test split
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049  # idx: 0x0000 0x08 (uint8) 0x03/0x01 (dimensions)
SIDE = 28
NUM_CLASSES = 10


class IdxError(ValueError):
    """A source file is missing, broken or inconsistent with its partner."""


def read_source(src: Path, name: str) -> tuple:
    """The un-gzipped bytes of ``src/name`` or ``src/name.gz`` and the path they came from.
    Both present: their contents must agree."""
    found = []
    for path in (src / name, src / f'{name}.gz'):
        if path.is_file():
            data = path.read_bytes()
            try:
                found.append((gzip.decompress(data) if path.suffix == '.gz' else data, path))
            except (OSError, EOFError, zlib.error) as error:
                raise IdxError(f'{path}: not a complete gzip file ({error})') from error
    if not found:
        raise IdxError(f'{src}: missing {name} (or {name}.gz)')
    if len(found) == 2 and found[0][0] != found[1][0]:
        raise IdxError(f'{found[0][1]} and {found[1][1]} differ; keep one of them')
    return found[0]


def check_idx(data: bytes, path: Path, magic: int) -> np.ndarray:
    """Parse big-endian idx bytes of uint8 (images ``N x 28 x 28`` for ``IMAGE_MAGIC``,
    labels ``N`` for ``LABEL_MAGIC``) into an array; raise :class:`IdxError` naming ``path``."""
    kind = 'images' if magic == IMAGE_MAGIC else 'labels'
    ndim = magic & 0xFF
    header = 4 * (1 + ndim)
    if len(data) < header:
        raise IdxError(f'{path}: {len(data)} bytes, shorter than the {header}-byte {kind} header')
    found_magic, *shape = (int(v) for v in np.frombuffer(data[:header], dtype='>u4'))
    if found_magic != magic:
        raise IdxError(f'{path}: magic number {found_magic}, expected {magic} ({kind} file)')
    if kind == 'images' and shape[1:] != [SIDE, SIDE]:
        raise IdxError(f'{path}: images of {shape[1]}x{shape[2]}, expected {SIDE}x{SIDE}')
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        state = 'truncated' if len(data) < expected else 'has trailing bytes'
        raise IdxError(
            f'{path}: {state}: its header promises {"x".join(map(str, shape))} {kind} '
            f'({expected} bytes un-gzipped), the file has {len(data)} bytes'
        )
    array = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
    if kind == 'labels' and array.size and array.max() >= NUM_CLASSES:
        raise IdxError(f'{path}: label {array.max()}, allowed 0..{NUM_CLASSES - 1}')
    return array


def load_split(src: Path, prefix: str) -> Dict[str, bytes]:
    """Check one split's image and label files; return their un-gzipped bytes by output name."""
    images_name, labels_name = f'{prefix}-images-idx3-ubyte', f'{prefix}-labels-idx1-ubyte'
    images_data, images_path = read_source(src, images_name)
    labels_data, labels_path = read_source(src, labels_name)
    images = check_idx(images_data, images_path, IMAGE_MAGIC)
    labels = check_idx(labels_data, labels_path, LABEL_MAGIC)
    if len(images) != len(labels):
        raise IdxError(
            f'{images_path} holds {len(images)} images but {labels_path} '
            f'{len(labels)} labels; they must be equal'
        )
    return {images_name: images_data, labels_name: labels_data}


def prepare(src: Path, dst: Path, overwrite: bool = False) -> List[str]:
    """Check SRC's four files, then write into ``dst`` the ones it lacks; return what happened,
    one line a file."""
    files = {}
    for prefix in PREFIXES:
        files.update(load_split(src, prefix))
    differing = [
        str(dst / name)
        for name, data in files.items()
        if (dst / name).exists() and (dst / name).read_bytes() != data
    ]
    if differing and not overwrite:
        raise IdxError(
            f'{", ".join(differing)} already exist with other contents; nothing was written. '
            'Pass --overwrite to replace them, or choose another DST'
        )
    dst.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, data in files.items():
        path = dst / name
        if path.exists() and str(path) not in differing:
            lines.append(f'unchanged {path}')
            continue
        temporary = dst / f'.{name}.tmp'
        temporary.write_bytes(data)
        os.replace(temporary, path)
        lines.append(f'{"replaced" if str(path) in differing else "wrote"} {path} ({len(data)} B)')
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', type=Path, nargs='?', default=DEFAULT_SRC, help='source folder')
    parser.add_argument('dst', type=Path, nargs='?', default=DEFAULT_DST, help='output folder')
    parser.add_argument(
        '--overwrite', action='store_true', help='replace DST files that have other contents'
    )
    args = parser.parse_args(argv)
    try:
        lines = prepare(args.src, args.dst, args.overwrite)
    except (IdxError, OSError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    print('\n'.join(lines))
    if all(line.startswith('unchanged') for line in lines):
        print(f'Fashion-MNIST already complete in {args.dst}; nothing written')
    return 0


if __name__ == '__main__':
    sys.exit(main())
