"""Energy-inspired self-supervised pretraining for MMPretrain.

Importing this package registers its models, transforms and hooks in mmpretrain's registries,
its model zoo (``model-index.yml``) in mmpretrain's ``ModelHub`` and its ``inference_model``
as mmpretrain's, and allow-lists the types that mmengine checkpoints hold for
``torch.load(weights_only=True)``.
"""

from . import utils  # noqa: F401  (first: its requirement check names what is missing)

# isort: split
from . import datasets, engine, models, visualization  # noqa: F401  (registration)
from .utils import allow_runner_checkpoint_types
from .version import __version__

# isort: split
from . import apis  # noqa: E402  (after the registries: it builds models)

allow_runner_checkpoint_types()
if apis.MODEL_INDEX.is_file():  # a source checkout or editable install (a wheel has no configs)
    apis.register_model_index()
apis.install_inference_model()

__all__ = ['__version__']
