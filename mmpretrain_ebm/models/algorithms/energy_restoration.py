"""Energy-inspired self-supervised pretraining (Wang et al., ICLR 2023), Eq. 4 / Algorithm 1."""

from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from ..utils.checkpointing import (
    DEFAULT_CHECKPOINT_BLOCKS,
    assert_no_reentrant_checkpointing,
    enable_activation_checkpointing,
)
from ..utils.energy_monitor import EnergyMonitor
from ..utils.energy_scaler import (
    EnergyGradScaler,
    fp16_autocast_active,
    load_legacy_scaler_state,
)
from ..utils.finite_checks import NonFiniteGuard
from ..utils.input_gradient import build_input_gradient
from ..utils.stepwise_backward import StepwiseBackward, default_step_loss_scaler, whole_backward


class RestorationStep(NamedTuple):
    """One step: x_n [B, C, H, W] (differentiable in the parameters and alpha), and the
    energies E(SG(x_{n-1})) [B] (float32) and dE/dx (like x) at its start."""

    x: Tensor
    energy: Tensor
    grad: Tensor


@MODELS.register_module()
class EnergyRestorationAlgorithm(BaseSelfSupervisor):
    """Pretrain a backbone as an energy function E(x) = head(backbone(x)) that restores
    corrupted images (Eq. 4), in the data preprocessor's normalized space:

        x_n = SG(x_{n-1}) - alpha * dE/dx |SG(x_{n-1}),   n = 1..N,   x_0 the corrupted batch
        loss = 1/N sum_n SmoothL1(x_n, x)

    The parameters learn only through the second-order path d/dtheta of dE/dx. docs/algorithm.md
    ("The algorithm") lists the choices where the paper is loose.

    Args:
        backbone: Backbone config (any mmpretrain backbone).
        head: Head config, normally :class:`EnergyHead`.
        num_steps: N, the restoration steps per batch (>= 1).
        alpha: Initial step size (> 0), a scalar without positivity constraint in training.
        learnable_alpha: Train alpha (``nn.Parameter``) or keep it fixed (buffer); either way
            ``self.alpha`` and the state-dict key ``alpha``.
        loss: Restoration criterion config, called as ``loss(x_n, x)``.
        grad_mode: The input-gradient estimator: ``'exact'`` (double backward, the paper's),
            ``'compiled'`` (the same gradients from a ``torch.compile``-d graph),
            ``'finite_difference'``, or an estimator config (:mod:`..utils.input_gradient`).
        grad_checkpoint: Non-reentrant activation checkpointing of the backbone's blocks
            (mmpretrain's reentrant ``with_cp`` cannot serve double backward and is refused).
        checkpoint_block_types: Class names of the blocks to checkpoint.
        stepwise_backward: Backpropagate each early step as soon as its loss exists, so only
            one step's double-backward graph is alive (same gradients; ``False`` keeps every
            step for one backward, as Listing 1).
        recompute_elementwise: ``grad_mode='exact'`` only (else an error; a config dict takes
            it inside): recompute cheap elementwise results of the double-backward graph
            instead of saving them (bit-identical gradients); ``None`` means True.
        energy_scaler: ``grad_mode='exact'`` only, as ``recompute_elementwise``: arguments of
            the fp16 energy scale (:class:`EnergyGradScaler`).
        log_clean_energy: Log ``energy_clean`` every this many calls of :meth:`loss` (one
            extra forward; ``True`` every call, ``0``/``False`` never).
        data_preprocessor: Defaults to ``SelfSupDataPreprocessor``.
        init_cfg: mmengine initialization config.
    """

    def __init__(
        self,
        backbone: dict,
        head: dict,
        num_steps: int = 2,
        alpha: float = 1.0,
        learnable_alpha: bool = True,
        loss: dict = dict(type='SmoothL1Loss', beta=1.0),
        grad_mode: Union[str, dict] = 'exact',
        grad_checkpoint: bool = False,
        checkpoint_block_types: Sequence[str] = DEFAULT_CHECKPOINT_BLOCKS,
        stepwise_backward: bool = True,
        recompute_elementwise: Optional[bool] = None,
        energy_scaler: Optional[dict] = None,
        log_clean_energy: int = 10,
        data_preprocessor: Optional[Union[dict, nn.Module]] = None,
        init_cfg: Optional[Union[dict, List[dict]]] = None,
    ) -> None:
        _check_arguments(
            num_steps, alpha, learnable_alpha, loss, head, grad_checkpoint, stepwise_backward
        )
        _check_exact_options(grad_mode, recompute_elementwise, energy_scaler)
        super().__init__(
            backbone=backbone, head=head, data_preprocessor=data_preprocessor, init_cfg=init_cfg
        )
        self.num_steps = num_steps
        self.criterion = MODELS.build(loss) if isinstance(loss, dict) else loss
        alpha = torch.tensor(float(alpha))
        if learnable_alpha:
            self.alpha = nn.Parameter(alpha)
        else:
            self.register_buffer('alpha', alpha)
        recompute = True if recompute_elementwise is None else recompute_elementwise
        self.input_gradient = build_input_gradient(grad_mode, recompute, energy_scaler)
        self.input_gradient.check_energy(self)
        assert_no_reentrant_checkpointing(self.backbone)
        if grad_checkpoint and not self.input_gradient.supports_activation_checkpointing:
            raise ValueError(
                f'grad_checkpoint=True cannot be used with grad_mode={grad_mode!r} (its '
                'compiled graph chooses what to recompute itself): drop one of the two'
            )
        if grad_checkpoint:
            enable_activation_checkpointing(self.backbone, checkpoint_block_types)
        self.stepwise_backward = stepwise_backward
        self.step_loss_scaler = default_step_loss_scaler()
        self.monitor = EnergyMonitor(log_clean_energy)
        self.register_load_state_dict_pre_hook(load_legacy_scaler_state)

    # ------------------------------------------------------------------ Eq. 4
    def energy(self, x: Tensor) -> Tensor:
        """E(x) = head(backbone(x)): images [B, C, H, W] -> energies [B] (float32)."""
        return self.head(self.backbone(x))

    def step(self, x: Tensor, create_graph: bool = True) -> RestorationStep:
        """x_n = SG(x_{n-1}) - alpha * dE/dx at SG(x_{n-1})."""
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            energy, grad = self.input_gradient(self.energy, x, create_graph)
            return RestorationStep(x - self.alpha * grad, energy, grad)

    def chain(self, corrupted: Tensor, create_graph: bool = True) -> Iterator[RestorationStep]:
        """Steps n = 1..N from x_0 = ``corrupted``, each taken when the previous was consumed."""
        x = corrupted
        for _ in range(self.num_steps):
            step = self.step(x, create_graph)
            yield step
            x = step.x

    def loss(self, inputs: List[Tensor], data_samples=None) -> Dict[str, Tensor]:
        """``loss_step{n}`` = SmoothL1(x_n, x) / N (mmengine sums them to the mean over
        steps), ``alpha`` and the energies; raises ``FloatingPointError`` for a non-finite
        value before the optimizer step."""
        clean, corrupted = self._split_views(inputs)
        after_step, guard = self._after_step(corrupted), NonFiniteGuard(self.num_steps)
        guard.watch(0, alpha=self.alpha)
        losses, energies = {}, []
        for n, (x_n, energy, grad) in enumerate(self.chain(corrupted), start=1):
            step_loss = after_step(n, self.criterion(x_n, clean))
            guard.watch(n, energy=energy, grad=grad, loss=step_loss)
            losses[f'loss_step{n}'] = step_loss / self.num_steps
            energies.append(energy.detach())
        guard.watch_flags('parameter_gradient', getattr(after_step, 'finite', []))
        guard.check(note=self.input_gradient.describe_precision(corrupted.device.type))
        losses.update(self.monitor(self, clean, corrupted_energy=energies[0]))
        return losses

    # ------------------------------------------------------------------ engineering
    def _after_step(self, corrupted: Tensor):
        """The chain's per-step callback: stepwise backward or Listing 1's one backward."""
        if not self.stepwise_backward:
            return whole_backward
        params = [p for p in self.parameters() if p.requires_grad]
        fp16 = fp16_autocast_active(corrupted.device.type)
        return StepwiseBackward(params, self.num_steps, self.step_loss_scaler if fp16 else None)

    def fp16_scalers(self) -> Dict[str, EnergyGradScaler]:
        """The dynamic fp16 scales (not in ``state_dict``; ``EnergyAmpOptimWrapper`` saves
        them with its loss scale): the energy's, if the estimator has one, and the early
        steps' loss scale of the stepwise backward."""
        scalers = {'energy': self.input_gradient.scaler, 'step_loss': self.step_loss_scaler}
        return {name: scaler for name, scaler in scalers.items() if scaler is not None}

    # ------------------------------------------------------------------ inference
    def restore(self, corrupted: Tensor) -> List[Tensor]:
        """Restore a normalized corrupted batch [B, C, H, W]: returns detached [x0, ..., xN].

        Works under ``torch.no_grad()`` (gradients are enabled inside), not under
        ``torch.inference_mode()``. Call it in eval mode: in train mode BatchNorm uses and
        updates batch statistics.
        """
        if torch.is_inference_mode_enabled():
            raise RuntimeError(
                'a restoration step cannot run under torch.inference_mode(): it computes '
                'dE/dx, which needs autograd; use torch.no_grad() or no context (gradients '
                'are enabled inside the step)'
            )
        steps = self.chain(corrupted, create_graph=False)
        return [corrupted.detach()] + [step.x.detach() for step in steps]

    def forward(self, inputs: Union[Tensor, List[Tensor]], data_samples=None, mode: str = 'tensor'):
        """``'tensor'``: the restoration chain [x0..xN]; ``'loss'``: the loss dict;
        ``'predict'``: data samples carrying the chain."""
        if mode == 'tensor':
            return self.restore(self._corrupted_view(inputs))
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}"; choose "tensor", "loss" or "predict"')

    def extract_feat(self, inputs: Tensor):
        """Backbone features of a batch [B, C, H, W] (fused attention kernels)."""
        return self.backbone(inputs)

    def predict(
        self, inputs: Union[Tensor, List[Tensor]], data_samples: Optional[List[DataSample]] = None
    ) -> List[DataSample]:
        """Restore the corrupted view; each sample gets ``restoration_chain`` [N+1, C, H, W]
        (normalized space, x0 first)."""
        chain = torch.stack(self.restore(self._corrupted_view(inputs)), dim=1)
        if data_samples is None:
            data_samples = [DataSample() for _ in range(chain.shape[0])]
        for sample, images in zip(data_samples, chain):
            sample.set_field(images, 'restoration_chain', dtype=Tensor)
        return data_samples

    # ------------------------------------------------------------------ input checks
    @staticmethod
    def _split_views(inputs: Union[Tensor, Sequence[Tensor]]) -> Tuple[Tensor, Tensor]:
        """``inputs = [clean, corrupted]`` -> (clean, corrupted), checked."""
        if isinstance(inputs, Tensor) or not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            got = (
                f'a single tensor of shape {tuple(inputs.shape)}'
                if isinstance(inputs, Tensor)
                else f'{len(inputs)} view(s)'
                if isinstance(inputs, (list, tuple))
                else type(inputs).__name__
            )
            raise ValueError(
                'EnergyRestorationAlgorithm expects inputs=[clean, corrupted] (two views, '
                f'from a corruption transform in the pipeline), got {got}'
            )
        clean, corrupted = inputs
        if clean.shape != corrupted.shape or clean.dim() != 4:
            raise ValueError(
                'clean and corrupted views must both be [B, C, H, W] of one '
                f'shape, got {tuple(clean.shape)} and {tuple(corrupted.shape)}'
            )
        return clean, corrupted

    @classmethod
    def _corrupted_view(cls, inputs: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """A bare tensor is the corrupted batch; ``[clean, corrupted]`` gives its second."""
        return inputs if isinstance(inputs, Tensor) else cls._split_views(inputs)[1]


def _check_arguments(
    num_steps, alpha, learnable_alpha, loss, head, grad_checkpoint, stepwise_backward
) -> None:
    """Clear errors for the algorithm's own arguments (the components check theirs)."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f'num_steps must be an int >= 1, got {num_steps!r}')
    if (
        not isinstance(alpha, (int, float))
        or isinstance(alpha, bool)
        or not alpha > 0
        or alpha == float('inf')
    ):
        raise ValueError(f'alpha (initial step size) must be a finite number > 0, got {alpha!r}')
    flags = dict(
        learnable_alpha=learnable_alpha,
        grad_checkpoint=grad_checkpoint,
        stepwise_backward=stepwise_backward,
    )
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise TypeError(f'{name} must be True or False, got {value!r}')
    if not isinstance(loss, dict) and not callable(loss):
        raise TypeError(
            "loss must be a criterion config dict (e.g. dict(type='SmoothL1Loss', beta=1.0)) "
            f'or a callable loss(x_n, x), got {loss!r}'
        )
    if head is None:
        raise ValueError('EnergyRestorationAlgorithm needs a head (e.g. EnergyHead)')


def _check_exact_options(grad_mode, recompute_elementwise, energy_scaler) -> None:
    """The exact estimator's options are refused where they would be ignored: another
    ``grad_mode`` name, or a config dict (which holds its estimator's arguments itself)."""
    options = dict(recompute_elementwise=recompute_elementwise, energy_scaler=energy_scaler)
    given = [name for name, value in options.items() if value is not None]
    if given and not (isinstance(grad_mode, str) and grad_mode == 'exact'):
        raise ValueError(
            f"{' and '.join(given)} configure grad_mode='exact' only, got grad_mode="
            f'{grad_mode!r}: give them inside the estimator config dict (e.g. '
            "dict(type='ExactInputGradient', recompute_elementwise=False)) or drop them"
        )
