"""The installed stack is checked at import and named in the error; setup.py declares ranges
(no exact pins of torch, torchvision or mmcv) and the pinned stack is the constraints file.

A missing package is simulated in a subprocess with ``sys.modules[name] = None``, which makes
both ``import name`` and ``importlib.util.find_spec(name)`` see no such package.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

from mmpretrain_ebm.utils.requirements import (
    REQUIREMENTS,
    SEG_REQUIREMENTS,
    version_problems,
)

REPO = Path(__file__).resolve().parents[2]
CONVERTER = REPO / 'tools' / 'model_converters' / 'ebm2mmseg.py'
SEG_CONFIG = (
    REPO
    / 'configs'
    / 'benchmarks'
    / 'mmsegmentation'
    / 'upernet_ebm-vit-base-p16_8xb2-amp-160k_ade20k-512x512.py'
)


def run_without(hidden: list, code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter of this venv in which ``hidden`` do not exist."""
    prelude = 'import sys\n' + ''.join(f'sys.modules[{name!r}] = None\n' for name in hidden)
    return subprocess.run(
        [sys.executable, '-c', prelude + code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_version_problems_names_the_package_the_version_and_what_to_install():
    requirements = {
        'torch': (('torch',), '2.4.0', '3.0.0'),
        'mmcv': (('mmcv', 'mmcv-lite'), '2.1.0', '2.2.0'),
    }
    hints = {'mmcv': 'pip install mmcv-lite'}
    assert version_problems({'torch': '2.11.0+cu130', 'mmcv': '2.1.0'}, requirements, hints) == []
    # pre-releases and local builds of an accepted release are accepted
    assert version_problems({'torch': '2.4.0a0+git1234', 'mmcv': '2.1.0'}, requirements, {}) == []
    assert version_problems({'torch': '2.3.1', 'mmcv': None}, requirements, hints) == [
        "torch is 2.3.1; it needs torch >=2.4.0,<3.0.0: pip install 'torch>=2.4.0,<3.0.0'",
        'mmcv is not installed; it needs mmcv or mmcv-lite >=2.1.0,<2.2.0: pip install mmcv-lite',
    ]
    assert version_problems({'torch': '3.0.0', 'mmcv': '2.2.0'}, requirements, {}) == [
        "torch is 3.0.0; it needs torch >=2.4.0,<3.0.0: pip install 'torch>=2.4.0,<3.0.0'",
        'mmcv is 2.2.0; it needs mmcv or mmcv-lite >=2.1.0,<2.2.0: '
        "pip install 'mmcv>=2.1.0,<2.2.0'",
    ]


def test_import_without_mmcv_fails_naming_mmcv_lite_and_full_mmcv():
    result = run_without(['mmcv'], 'import mmpretrain_ebm')
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()
    assert last[-2] == (
        'mmpretrain_ebm.utils.requirements.RequirementError: '
        'mmpretrain_ebm cannot be imported in this environment:'
    )
    assert last[-1].startswith(
        '- mmcv is not installed; it needs mmcv or mmcv-lite >=2.1.0,<2.2.0: pip install '
        "'mmcv-lite>=2.1.0,<2.2.0' for pretraining, or OpenMMLab's full mmcv 2.1.0"
    )
    # the check ran before anything imported mmcv (mmpretrain would fail less clearly)
    assert 'mmpretrain/__init__' not in result.stderr


def test_converter_without_mmseg_or_mmcv_ops_names_what_to_install_and_writes_nothing(tmp_path):
    out = tmp_path / 'out.pth'
    source = tmp_path / 'missing.pth'
    argv = [str(CONVERTER), str(SEG_CONFIG), str(source), str(out)]
    main = f'import runpy, sys; sys.argv = {argv!r}\n'
    main += f'runpy.run_path({str(CONVERTER)!r}, run_name="__main__")'
    cases = [(['mmseg'], 'mmseg is not installed; it needs mmsegmentation >=1.2.2,<1.3.0: ')]
    if importlib.util.find_spec('mmseg') is not None:  # mmseg there, mmcv-lite in place of mmcv
        ops = 'mmcv.ops does not import (import of mmcv.ops halted; None in sys.modules)'
        cases.append((['mmcv.ops'], ops))
    for hidden, reason in cases:
        result = run_without(hidden, main)
        assert result.returncode == 1, result.stderr
        message = result.stderr.strip().splitlines()[-1]
        assert message.startswith(
            'error: tools/model_converters/ebm2mmseg.py needs mmsegmentation and mmcv.ops: '
            + reason
        ), message
        assert (
            "in place of mmcv-lite (pip uninstall mmcv-lite; mim install 'mmcv>=2.1.0,<2.2.0')"
            in message
        )
        assert '[1/4]' not in result.stdout  # stopped before reading anything
        assert not out.exists()


def read_setup() -> dict:
    """The keyword arguments that setup.py hands to setuptools.setup."""
    code = (
        'import json, runpy, setuptools\n'
        'setuptools.setup = lambda **kw: print(json.dumps({k: kw[k] for k in '
        '("install_requires", "extras_require", "python_requires")}))\n'
        'runpy.run_path("setup.py")\n'
    )
    result = subprocess.run(
        [sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def test_setup_declares_the_checked_ranges_and_no_exact_pin_of_torch_or_mmcv():
    setup = read_setup()
    install = {Requirement(line).name: Requirement(line) for line in setup['install_requires']}
    seg = {Requirement(line).name: Requirement(line) for line in setup['extras_require']['seg']}
    for name, (distributions, low, high) in REQUIREMENTS.items():
        if name == 'mmcv':  # mmcv or mmcv-lite: not declared, checked at import
            assert not {'mmcv', 'mmcv-lite'} & set(install)
            assert str(seg['mmcv'].specifier) == f'<{high},>={low}'  # the full one, for mmseg
            continue
        assert str(install[distributions[0]].specifier) == f'<{high},>={low}'
    for (distribution,), low, high in SEG_REQUIREMENTS.values():
        assert distribution not in install
        assert str(seg[distribution].specifier) == f'<{high},>={low}'
    for requirement in [*install.values(), *seg.values()]:
        assert not any(spec.operator in ('==', '===') for spec in requirement.specifier)
    assert set(setup['extras_require']['tests']) >= {'pytest', 'pytest-timeout', 'ruff'}


def test_constraints_pin_one_point_inside_the_declared_ranges():
    setup = read_setup()
    declared = {
        Requirement(line).name: Requirement(line)
        for line in setup['install_requires'] + setup['extras_require']['seg']
    }
    pins = {}
    for line in (REPO / 'requirements' / 'constraints.txt').read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == '==', line
            pins[requirement.name] = spec.version
    assert {
        'torch',
        'torchvision',
        'mmengine',
        'mmcv',
        'mmpretrain',
        'mmsegmentation',
        'ruff',
    } <= set(pins)
    for name, version in pins.items():
        if name in declared:
            assert declared[name].specifier.contains(version), (name, version)
