"""Energy-inspired self-supervised pretraining for MMPretrain.

Importing this package registers its models, transforms and hooks in mmpretrain's registries
and its model zoo (``model-index.yml``) in mmpretrain's ``ModelHub``, and allow-lists the
types that mmengine checkpoints hold for ``torch.load(weights_only=True)``. It patches nothing
of mmpretrain: our ``inference_model`` (which knows energy models) is
``mmpretrain_ebm.apis.inference_model``.
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

__all__ = ['__version__']
