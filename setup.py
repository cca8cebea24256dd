"""Packaging for mmpretrain-ebm (import name ``mmpretrain_ebm``).

The dependencies are ranges, so that ``pip install -e .`` fits into an environment that
already has torch (built for its CUDA), mmcv and mmpretrain and changes none of them. The
ranges live in ``mmpretrain_ebm/utils/requirements.py``, which also checks them at import.
mmcv is not declared (the import check names what to install): ``mmcv`` (with compiled ops)
and ``mmcv-lite`` provide the same import package and pip cannot require "either of"; the
``seg`` extra requires the full one, as mmsegmentation does.

The one exactly pinned stack (torch 2.14.1, mmcv 2.1.0 built from source, ...) that the README's
``make demo`` / ``make test`` and CI install is ``requirements/constraints.txt``, applied by
``tools/setup_env.sh``.
"""

import ast
import re
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def read_version() -> str:
    """Return ``__version__`` from ``mmpretrain_ebm/version.py`` without importing the package."""
    text = (ROOT / 'mmpretrain_ebm' / 'version.py').read_text()
    return re.search(r"__version__ = '([^']+)'", text).group(1)


def read_requirements() -> dict:
    """The literal dicts ``REQUIREMENTS`` and ``SEG_REQUIREMENTS`` of the import check, read
    without importing it: ``{name: ((distribution, ...), lowest, first unsupported)}``."""
    tree = ast.parse((ROOT / 'mmpretrain_ebm' / 'utils' / 'requirements.py').read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found[node.target.id] = ast.literal_eval(node.value)
    return found


def specifier(distribution: str, low: str, high: str) -> str:
    return f'{distribution}>={low},<{high}'


RANGES = read_requirements()
CORE = RANGES['REQUIREMENTS']
INSTALL_REQUIRES = [
    specifier(distributions[0], low, high)
    for name, (distributions, low, high) in CORE.items()
    if name != 'mmcv'  # mmcv or mmcv-lite: checked at import, see above
] + [
    'packaging',  # the import check
    # real photographs for the embedded demo and the tests
    'scikit-image',
    'tqdm',
]

EXTRAS_REQUIRE = {
    'tests': ['pytest', 'pytest-timeout', 'tensorboard', 'ruff'],
    # the segmentation transfer: mmsegmentation and the full mmcv with compiled ops
    'seg': [
        *(specifier(d[0], low, high) for d, low, high in RANGES['SEG_REQUIREMENTS'].values()),
        specifier('mmcv', *CORE['mmcv'][1:]),
        # imported by mmseg at import time but not declared by it
        'ftfy',
        'regex',
    ],
}

setup(
    name='mmpretrain-ebm',
    version=read_version(),
    description='Energy-inspired self-supervised pretraining for MMPretrain',
    long_description=(ROOT / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    python_requires='>=3.11',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    include_package_data=True,
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    zip_safe=False,
)
