"""tools/dataset_converters/prepare_demo_data.py through its command line: it writes crops of
the photographs, regenerates on other settings, and never deletes or overwrites a file it did
not write itself (small crops, 2 per photograph: 16 files a run)."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from skimage import data as skdata

ROOT = Path(__file__).parents[2]
TOOL = ROOT / 'tools' / 'dataset_converters' / 'prepare_demo_data.py'
TRAIN = ('astronaut', 'coffee', 'chelsea', 'rocket', 'immunohistochemistry', 'hubble_deep_field')
VAL = ('motorcycle_left', 'motorcycle_right')


def run(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), str(out), '--per-image', '2', *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def tree(folder: Path) -> dict:
    """Every file under ``folder`` with its SHA-256."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob('*'))
        if path.is_file()
    }


def crops(per_image: int = 2) -> set:
    return {
        f'{split}/{name}_{index:03d}.png'
        for split, names in (('train', TRAIN), ('val', VAL))
        for name in names
        for index in range(per_image)
    }


def test_writes_crops_of_the_photographs_then_leaves_them(tmp_path):
    out = tmp_path / 'demo'
    result = run(out, '--crop', '16')
    assert result.returncode == 0, result.stderr
    files = tree(out)
    assert set(files) == crops() | {'prepare_demo_data.json'}
    manifest = json.loads((out / 'prepare_demo_data.json').read_text())
    assert manifest['settings'] == dict(
        crop=16, per_image=2, seed=0, train=list(TRAIN), val=list(VAL)
    )
    assert manifest['complete'] and manifest['files'] == {
        name: digest for name, digest in files.items() if name.endswith('.png')
    }
    # each crop is a 16-px window of its photograph, pixel for pixel
    for name, photo in (
        ('astronaut', skdata.astronaut()),
        ('motorcycle_left', skdata.stereo_motorcycle()[0]),
    ):
        split = 'train' if name in TRAIN else 'val'
        patch = cv2.imread(str(out / split / f'{name}_001.png'))[..., ::-1]
        assert patch.shape == (16, 16, 3)
        distance = cv2.matchTemplate(
            np.ascontiguousarray(photo), np.ascontiguousarray(patch), cv2.TM_SQDIFF
        )
        assert distance.min() == 0
    again = run(out, '--crop', '16')
    assert again.returncode == 0 and 'demo data already in' in again.stdout
    assert tree(out) == files


def test_other_settings_regenerate(tmp_path):
    out = tmp_path / 'demo'
    assert run(out, '--crop', '16').returncode == 0
    first = tree(out)
    result = run(out, '--crop', '24', '--seed', '5')
    assert result.returncode == 0, result.stderr
    assert 'settings changed: crop 16 -> 24, seed 0 -> 5' in result.stdout
    assert cv2.imread(str(out / 'train' / 'coffee_000.png')).shape == (24, 24, 3)
    assert run(out, '--crop', '16').returncode == 0
    assert tree(out) == first  # the same seed gives the same crops
    assert run(out, '--crop', '16', '--seed', '1').returncode == 0
    assert tree(out)['train/coffee_000.png'] != first['train/coffee_000.png']
    # fewer crops per photograph: the tool's own extra files go
    result = run(out, '--crop', '16', '--per-image', '1')  # the last --per-image wins
    assert result.returncode == 0, result.stderr
    assert set(tree(out)) == crops(per_image=1) | {'prepare_demo_data.json'}


def test_refuses_a_folder_with_files_it_did_not_write(tmp_path):
    out = tmp_path / 'demo'
    assert run(out, '--crop', '16').returncode == 0
    (out / 'train' / 'holiday.png').write_bytes(b'a user photo')
    (out / 'val' / 'more').mkdir()
    (out / 'val' / 'more' / 'x.png').write_bytes(b'another')
    (out / 'train' / 'rocket_001.png').write_bytes(b'a user file under a crop name')
    before = tree(out)
    for args in (('--crop', '16'), ('--crop', '24', '--seed', '5')):
        result = run(out, *args)
        assert result.returncode == 1
        assert (
            f'{out} holds files that this tool did not write (or that changed since it '
            'wrote them): train/holiday.png, train/rocket_001.png, val/more.' in result.stderr
        )
        assert tree(out) == before


def legacy_folder(out: Path, extra: str = None) -> None:
    """Crops as the versions without a manifest named them (their val split held cat)."""
    for name in (
        'train/astronaut_000.png',
        'train/hubble_deep_field_023.png',
        'val/cat_000.png',
        *([extra] if extra else []),
    ):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / name), np.zeros((8, 8, 3), np.uint8))


def test_folder_of_an_earlier_version(tmp_path):
    out = tmp_path / 'old'
    legacy_folder(out)
    result = run(out, '--crop', '16')
    assert result.returncode == 0 and 'earlier version' in result.stdout
    assert set(tree(out)) == crops() | {'prepare_demo_data.json'}
    assert cv2.imread(str(out / 'train' / 'astronaut_000.png')).shape == (16, 16, 3)

    mixed = tmp_path / 'mixed'
    legacy_folder(mixed, extra='val/cat_photo_of_mine.png')
    before = tree(mixed)
    result = run(mixed, '--crop', '16')
    assert result.returncode == 1 and 'val/cat_photo_of_mine.png.' in result.stderr
    assert tree(mixed) == before


def test_an_interrupted_run_is_completed(tmp_path):
    out = tmp_path / 'demo'
    assert run(out, '--crop', '16').returncode == 0
    complete = tree(out)
    # as a run killed while writing leaves it: crops on record as pending, one missing
    manifest = json.loads((out / 'prepare_demo_data.json').read_text())
    manifest.update(complete=False, files=dict.fromkeys(manifest['files']))
    (out / 'prepare_demo_data.json').write_text(json.dumps(manifest))
    (out / 'val' / 'motorcycle_right_001.png').unlink()
    result = run(out, '--crop', '16')
    assert result.returncode == 0 and 'incomplete' in result.stdout
    assert tree(out) == complete


def test_a_crop_larger_than_the_photographs_changes_nothing(tmp_path):
    out = tmp_path / 'demo'
    assert run(out, '--crop', '16').returncode == 0
    before = tree(out)
    result = run(out, '--crop', '400')
    assert result.returncode == 1
    assert '--crop 400 does not fit the photographs: allowed 8 to 300' in result.stderr
    assert tree(out) == before
