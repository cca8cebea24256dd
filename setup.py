"""Packaging for mmpretrain-ebm (import name ``mmpretrain_ebm``).

The pins below are one set that installs and works together on CPython 3.11 with torch 2.14.
mmcv 2.1.0 has no wheel for this torch: ``tools/setup_env.sh`` builds it from source first.
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def read_version() -> str:
    """Return ``__version__`` from ``mmpretrain_ebm/version.py`` without importing the package."""
    text = (ROOT / 'mmpretrain_ebm' / 'version.py').read_text()
    return re.search(r"__version__ = '([^']+)'", text).group(1)


INSTALL_REQUIRES = [
    'torch==2.14.1',
    'torchvision==0.29.1',
    'mmengine==0.10.7',
    'mmcv==2.1.0',
    'mmpretrain==1.2.0',
    'mmsegmentation==1.2.2',
    # imported by mmseg at import time but not declared by it
    'ftfy',
    'regex',
    # real photographs for the embedded demo and the tests
    'scikit-image',
    'tqdm',
]

EXTRAS_REQUIRE = {
    'tests': ['pytest', 'pytest-timeout', 'tensorboard', 'ruff'],
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
