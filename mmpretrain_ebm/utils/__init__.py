"""Environment helpers: requirement checks, checkpoint allow-list and CPU distributed set-up."""

from . import requirements  # noqa: F401  (first: checks the installed stack before any import)
from .checkpoint_allowlist import RUNNER_CHECKPOINT_TYPES, allow_runner_checkpoint_types
from .distributed import (
    adapt_config_to_cpu_distributed,
    exit_cpu_distributed,
    replace_sync_batchnorm,
)

__all__ = [
    'RUNNER_CHECKPOINT_TYPES',
    'allow_runner_checkpoint_types',
    'adapt_config_to_cpu_distributed',
    'exit_cpu_distributed',
    'replace_sync_batchnorm',
]
