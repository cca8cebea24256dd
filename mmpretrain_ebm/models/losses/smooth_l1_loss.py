"""SmoothL1 restoration criterion of Listing 1 (``SmoothL1Loss(beta=1.0)``)."""

import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class SmoothL1Loss(BaseModule):
    """Mean SmoothL1 (Huber with threshold ``beta``) over all elements, times ``loss_weight``.

    Args:
        beta: Threshold between the quadratic and the linear part; must be >= 0.
        loss_weight: Multiplier of the loss.
    """

    def __init__(self, beta: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        if beta < 0:
            raise ValueError(f'beta must be >= 0, got {beta}')
        self.beta = beta
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Scalar loss between ``pred`` and ``target`` of the same shape."""
        return self.loss_weight * F.smooth_l1_loss(pred, target, beta=self.beta)
