"""The computations of the online k-NN evaluation (:class:`KNNEvaluationHook`): the weighted
vote, the pooling of backbone outputs, and the forward of a backbone on every patch or cell."""

import contextlib
import inspect

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Pooling rules of :func:`pool_features` (as ``EnergyHead``'s).
POOL_TYPES = ('auto', 'cls_token', 'mean_tokens', 'gap', 'none')


def weighted_knn_top1(
    train_feats: Tensor,
    train_labels: Tensor,
    test_feats: Tensor,
    test_labels: Tensor,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int = 1024,
) -> float:
    """Top-1 accuracy (percent) of the weighted k-NN classifier of InstDisc / DINO.

    Features are L2-normalized; each test feature takes its ``k`` most cosine-similar train
    features (``min(k, len(train))``), each votes for its label with weight
    ``exp(similarity / temperature)``, and the class with the largest sum wins (ties: the
    smallest label).
    """
    if train_feats.dim() != 2 or test_feats.dim() != 2:
        raise ValueError(
            f'features must be [N, C], got {tuple(train_feats.shape)} and {tuple(test_feats.shape)}'
        )
    if train_feats.shape[1] != test_feats.shape[1]:
        raise ValueError(
            f'train and test features differ in width: {train_feats.shape[1]} and '
            f'{test_feats.shape[1]}'
        )
    if len(train_feats) != len(train_labels) or len(test_feats) != len(test_labels):
        raise ValueError('one label per feature is needed')
    if len(train_feats) == 0 or len(test_feats) == 0:
        raise ValueError('k-NN needs at least one train and one test feature')
    train = F.normalize(train_feats.float(), dim=1)
    test = F.normalize(test_feats.float(), dim=1)
    train_labels = train_labels.long()
    num_classes = int(max(train_labels.max().item(), test_labels.max().item())) + 1
    k = min(k, len(train))
    correct = 0
    for start in range(0, len(test), chunk_size):
        sims, idx = (test[start : start + chunk_size] @ train.T).topk(k, dim=1)
        votes = torch.zeros(len(sims), num_classes, dtype=sims.dtype, device=sims.device)
        votes.scatter_add_(1, train_labels[idx], (sims / temperature).exp())
        pred = votes.argmax(dim=1)
        correct += (pred.cpu() == test_labels[start : start + chunk_size].cpu().long()).sum()
    return 100.0 * float(correct) / len(test)


def pool_features(feats, pool_type: str = 'auto', num_prefix_tokens: int = 1) -> Tensor:
    """[B, C] from backbone output(s) (the last of a tuple/list): ``'none'`` keeps [B, C],
    ``'cls_token'`` takes token 0 of [B, L, C], ``'mean_tokens'`` averages the tokens after
    the ``num_prefix_tokens`` first, ``'gap'`` averages a [B, C, H, W] map; ``'auto'``
    chooses by the number of dimensions (2: none, 3: mean_tokens, 4: gap)."""
    x = feats[-1] if isinstance(feats, (tuple, list)) else feats
    if pool_type == 'auto':
        pool_type = {2: 'none', 3: 'mean_tokens', 4: 'gap'}.get(x.dim(), '')
    expected = {'none': 2, 'cls_token': 3, 'mean_tokens': 3, 'gap': 4}.get(pool_type)
    if expected is None or x.dim() != expected:
        raise ValueError(
            f'cannot pool backbone features of shape {tuple(x.shape)} by {pool_type!r}'
        )
    if pool_type == 'cls_token':
        return x[:, 0]
    if pool_type == 'mean_tokens':
        if x.shape[1] <= num_prefix_tokens:
            raise ValueError(f'{x.shape[1]} tokens leave no patch token after {num_prefix_tokens}')
        return x[:, num_prefix_tokens:].mean(dim=1)
    if pool_type == 'gap':
        return x.mean(dim=(2, 3))
    return x


@contextlib.contextmanager
def every_cell_active(backbone: nn.Module, inputs: Tensor):
    """mmpretrain's sparse backbones (SparK's ``SparseConvNeXt``, ``SparseResNet``) read their
    mask from a class attribute, ``SparseHelper._cur_active``, that a training step leaves at
    its batch's mask (or None before the first): for a sparse backbone, every cell of every
    image active while ``inputs`` pass, the previous mask restored afterwards."""
    from mmpretrain.models.utils.sparse_modules import SparseHelper

    if not any(type(m).__module__ == SparseHelper.__module__ for m in backbone.modules()):
        yield
        return
    previous = SparseHelper._cur_active
    # one cell per image: every feature map is a whole multiple of it
    SparseHelper._cur_active = torch.ones(
        len(inputs), 1, 1, 1, dtype=torch.bool, device=inputs.device
    )
    try:
        yield
    finally:
        SparseHelper._cur_active = previous


def takes_mask(module: nn.Module) -> bool:
    try:
        return 'mask' in inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False
