"""Check the installed OpenMMLab stack when the package is imported, and name what to install.

``setup.py`` cannot declare mmcv: the same ``mmcv`` import package comes from two
distributions, ``mmcv`` (OpenMMLab's build with compiled ops, built for one torch and CUDA)
and ``mmcv-lite`` (no ops), and pip has no "either of". Declaring one would make pip install
it over the other. So mmcv is checked here, before anything imports it, together with the
ranges that ``setup.py`` declares (a user's environment may hold any version), and a missing or
unsupported package stops the import with an error that names the command to fix it.

:func:`require_seg` is the check for what only the segmentation transfer needs: mmsegmentation
and mmcv's compiled ops (``mmcv.ops``), which mmcv-lite lacks.
"""

import importlib
import importlib.util
from importlib import metadata
from typing import Dict, List, Optional, Tuple

from packaging.version import Version

#: import name -> (distributions that provide it, lowest version, first unsupported version).
#: Bounds as in setup.py: the lowest versions the test suite passed on, the upper bounds of
#: the next major release (mmcv: mmsegmentation 1.2.2 refuses mmcv >= 2.2.0).
REQUIREMENTS: Dict[str, Tuple[Tuple[str, ...], str, str]] = {
    'torch': (('torch',), '2.6.0', '3.0.0'),
    'torchvision': (('torchvision',), '0.21.0', '1.0.0'),
    'mmengine': (('mmengine',), '0.10.7', '1.0.0'),
    'mmcv': (('mmcv', 'mmcv-lite'), '2.1.0', '2.2.0'),
    'mmpretrain': (('mmpretrain',), '1.2.0', '2.0.0'),
}
#: what the segmentation transfer (converter, UperNet configs, mmseg training) needs in addition.
SEG_REQUIREMENTS: Dict[str, Tuple[Tuple[str, ...], str, str]] = {
    'mmseg': (('mmsegmentation',), '1.2.2', '1.3.0')
}

MMCV_HINT = (
    "pip install 'mmcv-lite>=2.1.0,<2.2.0' for pretraining, or OpenMMLab's full mmcv 2.1.0 "
    "built for your torch and CUDA (mim install 'mmcv>=2.1.0,<2.2.0') to also transfer to "
    'mmsegmentation'
)
SEG_HINT = (
    "install OpenMMLab's full mmcv 2.1.0 with compiled ops for your torch and CUDA in place of "
    "mmcv-lite (pip uninstall mmcv-lite; mim install 'mmcv>=2.1.0,<2.2.0'), then "
    "pip install 'mmsegmentation>=1.2.2,<1.3.0' ftfy regex (or pip install -e '.[seg]')"
)

#: why the segmentation tests skip where mmsegmentation is absent (they run where it is).
SEG_MISSING = f'mmsegmentation is not installed; the segmentation transfer needs it: {SEG_HINT}'


class RequirementError(ImportError):
    """A package that mmpretrain_ebm needs is missing or outside the supported range."""


def installed_version(import_name: str, distributions: Tuple[str, ...]) -> Optional[str]:
    """The version of the first of ``distributions`` installed, ``None`` if the import package
    ``import_name`` is not there at all. An import package without distribution metadata (a
    source checkout on ``sys.path``) is imported for its ``__version__``."""
    if importlib.util.find_spec(import_name) is None:
        return None
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:
        return str(importlib.import_module(import_name).__version__)
    except Exception as error:
        raise RequirementError(
            f'{import_name} is on the path without package metadata ({" or ".join(distributions)})'
            f' and its version cannot be read: {error!r}'
        ) from error


def version_problems(
    versions: Dict[str, Optional[str]],
    requirements: Dict[str, Tuple[Tuple[str, ...], str, str]],
    hints: Dict[str, str],
) -> List[str]:
    """One line per package of ``requirements`` that ``versions`` (import name -> installed
    version or ``None``) lacks or has out of range, with what to install."""
    problems = []
    for name, (distributions, low, high) in requirements.items():
        wanted = f'{" or ".join(distributions)} >={low},<{high}'
        hint = hints.get(name, f"pip install '{distributions[0]}>={low},<{high}'")
        version = versions.get(name)
        if version is None:
            problems.append(f'{name} is not installed; it needs {wanted}: {hint}')
        elif not Version(low) <= Version(Version(version).base_version) < Version(high):
            problems.append(f'{name} is {version}; it needs {wanted}: {hint}')
    return problems


def check_requirements() -> None:
    """Check torch, torchvision, mmengine, mmcv (or mmcv-lite) and mmpretrain."""
    versions = {
        name: installed_version(name, distributions)
        for name, (distributions, _, _) in REQUIREMENTS.items()
    }
    problems = version_problems(versions, REQUIREMENTS, {'mmcv': MMCV_HINT})
    if problems:
        raise RequirementError(
            'mmpretrain_ebm cannot be imported in this environment:\n- ' + '\n- '.join(problems)
        )


def mmcv_ops_error() -> Optional[str]:
    """Why ``mmcv.ops`` (the compiled ops) cannot be imported, ``None`` if it can."""
    try:
        import mmcv.ops  # noqa: F401
    except ImportError as error:  # mmcv-lite: no module mmcv._ext
        return f'mmcv.ops does not import ({error})'
    return None


def require_seg(purpose: str) -> None:
    """Raise :class:`RequirementError` unless mmsegmentation (in range) and ``mmcv.ops`` import;
    ``purpose`` names what needs them (e.g. ``'tools/model_converters/ebm2mmseg.py'``)."""
    versions = {'mmseg': installed_version('mmseg', ('mmsegmentation',))}
    problems = version_problems(versions, SEG_REQUIREMENTS, {'mmseg': SEG_HINT})
    if not problems:
        ops = mmcv_ops_error()
        problems = [] if ops is None else [f'{ops}; it needs full mmcv: {SEG_HINT}']
    if problems:
        raise RequirementError(f'{purpose} needs mmsegmentation and mmcv.ops: {problems[0]}')


check_requirements()
