"""Energy-inspired self-supervised pretraining for MMPretrain.

Importing this package registers its models, transforms and hooks in mmpretrain's registries
and allow-lists the types that mmengine checkpoints hold for ``torch.load(weights_only=True)``.
"""

from . import utils  # noqa: F401  (first: its requirement check names what is missing)

# isort: split
from . import datasets, engine, models, visualization  # noqa: F401  (registration)
from .utils import allow_runner_checkpoint_types
from .version import __version__

allow_runner_checkpoint_types()

__all__ = ['__version__']
