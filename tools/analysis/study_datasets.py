"""The datasets and backbones the study (``study.py``) runs on: configs, data, candidates."""

from dataclasses import dataclass, replace
from typing import Dict, Tuple


@dataclass(frozen=True)
class StudyData:
    """What the study needs to know of one dataset and backbone: its configs (energy: one per
    corruption, ``{}`` standing for it; the baseline method's: MAE for a ViT, SparK for a
    ConvNet), where its files are and how they are made, and the recipes its select phase
    compares (keyword arguments of :class:`Pretraining`, ``{}`` the configs' own)."""

    name: str
    title: str
    energy_config: str
    baseline_config: str
    downstream: Dict[str, str]  # task -> config
    default_corruption: str  # the energy config a run without a corruption of its own uses
    data_root: str
    required: Tuple[str, ...]  # files or folders under data_root
    prepare: str  # the command (or docs page) that makes them
    energy_candidates: Tuple[dict, ...]
    baseline: str = 'mae'  # the method name of baseline_config's runs
    baseline_candidates: Tuple[dict, ...] = (dict(), dict(lr=1e-3))  # MAE's base lr 1.5e-4, ours

    @property
    def methods(self) -> Tuple[str, str]:
        """The pretraining methods compared (scratch besides)."""
        return ('energy', self.baseline)


_BENCHMARKS = 'configs/benchmarks/mmpretrain/'
FASHION_MNIST = StudyData(
    name='fashion-mnist',
    title='Fashion-MNIST',
    energy_config='configs/ebm/ebm_vit-mini-p4_1xb256-{}-coslr-10e_fashion-mnist.py',
    baseline_config='configs/mae/mae_vit-mini-p4_1xb256-coslr-10e_fashion-mnist.py',
    downstream={
        'ft-k100': _BENCHMARKS + 'vit-mini-p4_1xb128-coslr-100e_fashion-mnist-k100.py',
        'probe': _BENCHMARKS + 'vit-mini-p4_1xb256-linear-coslr-30e_fashion-mnist-k1000.py',
        'ft-full': _BENCHMARKS + 'vit-mini-p4_1xb256-coslr-10e_fashion-mnist-full.py',
    },
    default_corruption='gridmask',
    data_root='data/fashion_mnist',
    required=tuple(
        f'{part}-{kind}-idx{dims}-ubyte'
        for part in ('train', 't10k')
        for kind, dims in (('images', 3), ('labels', 1))
    ),
    prepare='python tools/dataset_converters/prepare_fashion_mnist.py '
    '(docs/results_fashion_mnist.md)',
    energy_candidates=(
        dict(),  # grid masking 50 %, first step RMS 0.03, N = 2, lr 1e-3
        dict(target_rms=0.1),
        dict(target_rms=0.3),
        dict(num_steps=1),
        dict(lr=3e-3),
        dict(corruption='randmask-large'),
        dict(corruption='mixed'),
        # alpha barely moves at the base lr (Adam steps a scalar by about lr): let it learn
        dict(alpha_lr_mult=10),
        dict(alpha_lr_mult=100),
    ),
)
CIFAR10 = StudyData(
    name='cifar10',
    title='CIFAR-10',
    energy_config='configs/ebm/ebm_vit-mini-p4_1xb256-{}-coslr-10e_cifar10.py',
    baseline_config='configs/mae/mae_vit-mini-p4_1xb256-coslr-10e_cifar10.py',
    downstream={
        'ft-k100': _BENCHMARKS + 'vit-mini-p4_1xb128-coslr-100e_cifar10-k100.py',
        'probe': _BENCHMARKS + 'vit-mini-p4_1xb256-linear-coslr-30e_cifar10-k1000.py',
        'ft-full': _BENCHMARKS + 'vit-mini-p4_1xb256-coslr-10e_cifar10-full.py',
    },
    default_corruption='mixed',  # the paper's recipe: there is colour to restore
    data_root='data/cifar10',
    required=('train', 'test'),  # class folders of JPEG images
    prepare='mkdir -p data/cifar10 && tar xzf ../shared/data/cifar10-images.tar.gz -C '
    'data/cifar10 (docs/cifar10.md)',
    energy_candidates=(
        dict(),  # the paper's mix, first step RMS 0.03, N = 2, lr 1e-3
        # the mix against each of its parts (and the gridded mask of Fashion-MNIST)
        *(dict(corruption=c) for c in ('gridmask', 'randmask-large', 'sr4', 'denoise', 'colorize')),
        dict(target_rms=0.1),  # the first-step size
        dict(target_rms=0.3),
        dict(num_steps=1),
        dict(lr=3e-3),
    ),
)
CIFAR10_CONVNEXT = replace(
    CIFAR10,
    name='cifar10-convnext',
    title='CIFAR-10 ConvNeXt',
    energy_config='configs/ebm/ebm_convnext-mini-p2_1xb256-{}-coslr-10e_cifar10.py',
    baseline_config='configs/spark/spark_sparse-convnext-mini-p2_1xb256-coslr-10e_cifar10.py',
    downstream={
        'ft-k100': _BENCHMARKS + 'convnext-mini-p2_1xb128-coslr-100e_cifar10-k100.py',
        'probe': _BENCHMARKS + 'convnext-mini-p2_1xb256-linear-coslr-30e_cifar10-k1000.py',
        'ft-full': _BENCHMARKS + 'convnext-mini-p2_1xb256-coslr-10e_cifar10-full.py',
    },
    # the recipe the ViT's selection chooses is the one to port here; until then the mix
    energy_candidates=(
        dict(),
        dict(target_rms=0.1),
        dict(target_rms=0.3),
        dict(num_steps=1),
        dict(lr=3e-3),
    ),
    baseline='spark',
    # mmpretrain's LAMB lr (1e-4 per 256 images) and a larger one: LAMB moves a small model
    # slowly at that rate (docs/convnet.md)
    baseline_candidates=(dict(), dict(lr=1e-3)),
)
DATASETS = {data.name: data for data in (FASHION_MNIST, CIFAR10, CIFAR10_CONVNEXT)}
