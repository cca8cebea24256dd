"""Energy-inspired self-supervised pretraining (Wang et al., ICLR 2023), Algorithm 1."""

from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from ..utils.batchnorm import RunningStatisticsKept, frozen_batchnorm_statistics
from ..utils.checkpointing import (
    DEFAULT_CHECKPOINT_BLOCKS,
    assert_no_reentrant_checkpointing,
    enable_activation_checkpointing,
)
from ..utils.energy_scaler import EnergyGradScaler, any_rank, fp16_autocast_active
from ..utils.finite_difference import assert_smooth_energy
from ..utils.restoration_step import INPUT_GRADIENT_MODES, RestorationStep, restoration_step
from ..utils.stepwise_backward import StepwiseGradients, default_step_loss_scaler

#: Attributes holding an :class:`EnergyGradScaler` whose state goes into checkpoints.
SCALERS = ('energy_scaler', 'step_loss_scaler')


def _keep_scalers_missing_from_checkpoint(
    module: nn.Module, state_dict: dict, prefix: str, *_
) -> None:
    """Checkpoints written before the scalers were saved lack ``_extra_state``: the scalers
    keep their current state instead of the load reporting a missing key."""
    state_dict.setdefault(prefix + '_extra_state', module.get_extra_state())


@MODELS.register_module()
class EnergyRestorationAlgorithm(BaseSelfSupervisor):
    """Pretrain a backbone as an energy function that restores corrupted images.

    With E(x) = head(backbone(x)) and x~0 the corrupted batch, each step n = 1..N computes
    x~n = SG(x~n-1) - alpha * dE/dx |SG(x~n-1) (Eq. 4) with ``create_graph=True``, and the
    loss is the mean over steps of SmoothL1(x~n, x) against the clean batch x, both in the
    data preprocessor's normalized space. Parameters learn only through the second-order
    path d/dtheta of dE/dx.

    Choices where the paper is loose (also in README):

    - Eq. 4 sums j = 0..N, but x~0 does not depend on theta or alpha; the loss averages
      steps 1..N (Listing 1's terms), so its value is Eq. 4's restoration error of steps 1..N.
    - The criterion is Listing 1's ``SmoothL1Loss(beta=1.0)`` averaged over all pixels, not
      Eq. 4's MSE.
    - alpha is a plain scalar (learnable by default) with no positivity constraint during
      training; only its initial value must be > 0. Exclude it from weight decay in the
      optimizer config (``paramwise_cfg=dict(custom_keys={'alpha': dict(decay_mult=0.)})``).
    - ``dE/dx`` is the gradient of the batch-summed energy (Listing 1); with train-mode
      BatchNorm it couples the images of a batch, as in the paper's code.

    Note: a bias added right before the head (e.g. the final LayerNorm's bias of ViT, Swin
    or ConvNeXt) shifts E by a constant, so dE/dx and the loss do not depend on it and it
    learns nothing. Its ``.grad`` is ``None`` in the exact mode in a single process, but a
    zero tensor in the finite-difference mode and under DDP (which fills in zeros; no
    ``find_unused_parameters`` needed), where weight decay may still shrink it.

    Args:
        backbone: Backbone config (any mmpretrain backbone).
        head: Head config, normally :class:`EnergyHead`.
        num_steps: N, the restoration steps per batch (>= 1).
        alpha: Initial step size (> 0).
        learnable_alpha: Train alpha with the model (``nn.Parameter``) or keep it fixed
            (buffer). Either way it is ``self.alpha`` and the state-dict key ``alpha``.
        loss: Restoration criterion config, called as ``loss(x_n, x)``.
        grad_mode: How dE/dx and its parameter gradient are computed: ``'exact'`` (double
            backward, the paper's) or ``'finite_difference'`` (the second-order term
            estimated from two first-order passes, in float32 even under AMP: about 5e-3
            relative gradient error; on CPU 1.2x faster and 0.67x the live tensor memory of
            ``'exact'``; fused attention allowed; smooth energies only, see
            :mod:`..utils.finite_difference`).
        grad_checkpoint: Non-reentrant activation checkpointing of the backbone's blocks,
            which works with double backward (mmpretrain's ``with_cp`` does not and is
            refused).
        checkpoint_block_types: Class names of the blocks to checkpoint.
        stepwise_backward: Take each step's parameter gradients as soon as its loss exists
            and carry them into mmengine's single backward, so only one step's
            double-backward graph is alive: the same gradients with 0.64x the live tensor
            memory of ``False`` (Listing 1's one backward of all steps) at N = 2, within a
            few percent of its time (DeiT-S, ``tools/analysis/benchmark_step.py``); see
            :mod:`..utils.stepwise_backward`.
        recompute_elementwise: In the exact mode, keep the outputs of GELU and of the
            GELU and softmax backward out of the double-backward graph and recompute them
            (same ATen op, same inputs) when autograd unpacks them: bit-identical gradients
            with 0.73x the graph memory on ViT-B; see :mod:`..utils.saved_tensor_recompute`.
        energy_scaler: Keyword arguments of :class:`EnergyGradScaler`, the dynamic scale of
            the energy before the inner gradient in the exact mode under fp16 autocast (unused
            otherwise).
        log_clean_energy: Log ``energy_clean``, the mean energy of the clean batch, on every
            ``log_clean_energy``-th call of :meth:`loss` (the first included); ``True`` is
            every call, ``0``/``False`` never. It costs one forward without gradient (+8%
            of an N = 2 step on DeiT-S), so the default 10 keeps it under 1%; BatchNorm
            statistics are left untouched.
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
        grad_mode: str = 'exact',
        grad_checkpoint: bool = False,
        checkpoint_block_types: Sequence[str] = DEFAULT_CHECKPOINT_BLOCKS,
        stepwise_backward: bool = True,
        recompute_elementwise: bool = True,
        energy_scaler: Optional[dict] = None,
        log_clean_energy: int = 10,
        data_preprocessor: Optional[Union[dict, nn.Module]] = None,
        init_cfg: Optional[Union[dict, List[dict]]] = None,
    ) -> None:
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f'num_steps must be an int >= 1, got {num_steps!r}')
        if (
            not isinstance(alpha, (int, float))
            or isinstance(alpha, bool)
            or not alpha > 0
            or alpha == float('inf')
        ):
            raise ValueError(
                f'alpha (initial step size) must be a finite number > 0, got {alpha!r}'
            )
        if grad_mode not in INPUT_GRADIENT_MODES:
            raise ValueError(
                f'grad_mode must be one of {tuple(INPUT_GRADIENT_MODES)}, got {grad_mode!r}'
            )
        flags = dict(
            learnable_alpha=learnable_alpha,
            grad_checkpoint=grad_checkpoint,
            stepwise_backward=stepwise_backward,
            recompute_elementwise=recompute_elementwise,
        )
        for name, value in flags.items():
            if not isinstance(value, bool):
                raise TypeError(f'{name} must be True or False, got {value!r}')
        if not isinstance(loss, dict) and not callable(loss):
            raise TypeError(
                'loss must be a criterion config dict (e.g. dict(type='
                f"'SmoothL1Loss', beta=1.0)) or a callable loss(x_n, x), got {loss!r}"
            )
        if head is None:
            raise ValueError('EnergyRestorationAlgorithm needs a head (e.g. EnergyHead)')
        if not isinstance(log_clean_energy, int) or log_clean_energy < 0:
            raise ValueError(
                'log_clean_energy must be an interval in iterations (int >= 0) '
                f'or a bool, got {log_clean_energy!r}'
            )
        super().__init__(
            backbone=backbone, head=head, data_preprocessor=data_preprocessor, init_cfg=init_cfg
        )
        assert_no_reentrant_checkpointing(self.backbone)
        if grad_mode == 'finite_difference':
            assert_smooth_energy(self)
        if grad_checkpoint:
            enable_activation_checkpointing(self.backbone, checkpoint_block_types)
        self.num_steps = num_steps
        self.grad_mode = grad_mode
        self.clean_energy_interval = int(log_clean_energy)
        self._loss_calls = 0
        self.criterion = MODELS.build(loss) if isinstance(loss, dict) else loss
        alpha_tensor = torch.tensor(float(alpha))
        if learnable_alpha:
            self.alpha = nn.Parameter(alpha_tensor)
        else:
            self.register_buffer('alpha', alpha_tensor)
        self.energy_scaler = EnergyGradScaler(**(energy_scaler or {}))
        self.stepwise_backward = stepwise_backward
        self.recompute_elementwise = recompute_elementwise
        self.step_loss_scaler = default_step_loss_scaler()
        self.register_load_state_dict_pre_hook(_keep_scalers_missing_from_checkpoint)

    # ------------------------------------------------------------------ checkpoint state
    def get_extra_state(self) -> Tensor:
        """The fp16 scalers' state, saved as the state-dict entry ``_extra_state``: float64
        [2, 2], a row (scale, clean steps) per name in :data:`SCALERS` (mmengine restores its
        own outer GradScaler on resume; these would restart otherwise). A tensor, because
        tools treat every state-dict value as one."""
        return torch.tensor(
            [
                [getattr(self, name).state_dict()[key] for key in ('scale', 'good_steps')]
                for name in SCALERS
            ],
            dtype=torch.float64,
        )

    def set_extra_state(self, state: Tensor) -> None:
        """Restore :meth:`get_extra_state`'s output."""
        if not isinstance(state, Tensor) or state.shape != (len(SCALERS), 2):
            raise ValueError(
                '_extra_state of EnergyRestorationAlgorithm must be a tensor '
                f'[{len(SCALERS)}, 2] of (scale, clean steps) for {SCALERS}, got '
                f'{state!r}'
            )
        for name, (scale, good_steps) in zip(SCALERS, state.tolist()):
            getattr(self, name).load_state_dict({'scale': scale, 'good_steps': good_steps})

    # ------------------------------------------------------------------ energy and steps
    def energy(self, x: Tensor) -> Tensor:
        """E(x) = head(backbone(x)): images [B, C, H, W] -> energies [B] (float32)."""
        return self.head(self.backbone(x))

    def _step(self, x: Tensor, create_graph: bool) -> RestorationStep:
        """One step of Eq. 4; in the exact mode under fp16 autocast with the dynamic energy
        scale, recomputed at a smaller scale while its input gradient overflows.

        The retries leave BatchNorm running statistics as the first pass set them, and under
        torch.distributed all ranks retry together (SyncBN forwards are collectives).
        """
        if self.grad_mode != 'exact' or not fp16_autocast_active(x.device.type):
            return restoration_step(
                self.energy,
                x,
                self.alpha,
                self.grad_mode,
                create_graph,
                recompute_elementwise=self.recompute_elementwise,
            )
        scaler, retry = self.energy_scaler, False
        while True:
            with RunningStatisticsKept(self) if retry else nullcontext():
                step = restoration_step(
                    self.energy,
                    x,
                    self.alpha,
                    self.grad_mode,
                    create_graph,
                    energy_scale=scaler.scale,
                    recompute_elementwise=self.recompute_elementwise,
                )
            overflow = any_rank(
                torch.isfinite(step.energy).all() & ~torch.isfinite(step.grad).all()
            )
            if overflow and scaler.can_back_off:
                scaler.update(found_inf=True)  # recompute the step at a smaller scale
                retry = True
                continue
            if not overflow:
                scaler.update(found_inf=False)
            return step

    def restoration_chain(
        self, corrupted: Tensor, create_graph: bool = True
    ) -> List[RestorationStep]:
        """Run the N steps from x~0 = ``corrupted``; element n-1 holds x~n."""
        steps, x = [], corrupted
        for _ in range(self.num_steps):
            step = self._step(x, create_graph)
            steps.append(step)
            x = step.x
        return steps

    def restore(self, corrupted: Tensor) -> List[Tensor]:
        """Restore a normalized corrupted batch [B, C, H, W]: returns detached [x0, ..., xN].

        Works under ``torch.no_grad()`` (gradients are enabled inside). Call it in eval
        mode: in train mode BatchNorm uses and updates batch statistics.
        """
        with torch.enable_grad():
            steps = self.restoration_chain(corrupted, create_graph=False)
        return [corrupted.detach()] + [step.x.detach() for step in steps]

    # ------------------------------------------------------------------ inputs
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

    # ------------------------------------------------------------------ modes
    def forward(
        self,
        inputs: Union[Tensor, List[Tensor]],
        data_samples: Optional[List[DataSample]] = None,
        mode: str = 'tensor',
    ):
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

    def loss(
        self, inputs: List[Tensor], data_samples: Optional[List[DataSample]] = None
    ) -> Dict[str, Tensor]:
        """Eq. 4 with Listing 1's criterion.

        Returns:
            ``loss_step{n}`` (step n's criterion divided by N, so mmengine's summed ``loss``
            is the mean over steps), ``alpha``, ``energy_corrupted`` (mean E(x~0)) and,
            on the iterations selected by ``log_clean_energy``, ``energy_clean`` (mean E(x)).

        Raises:
            FloatingPointError: a non-finite energy, input gradient, step loss or alpha, or
                (``stepwise_backward`` outside fp16) parameter gradient of an early step,
                naming the step; raised before the optimizer step, so the weights stay
                intact. The last step's parameter gradients come from mmengine's backward
                after this returns and are not checked here (under fp16 ``AmpOptimWrapper``
                skips a non-finite update).
        """
        clean, corrupted = self._split_views(inputs)
        early_gradients_finite = []
        if self.stepwise_backward:
            steps, step_losses, early_gradients_finite = self._stepwise_chain(clean, corrupted)
        else:
            steps = self.restoration_chain(corrupted, create_graph=True)
            step_losses = [self.criterion(step.x, clean) for step in steps]
        self._assert_finite(steps, step_losses, early_gradients_finite)
        losses = {
            f'loss_step{n}': step_loss / self.num_steps
            for n, step_loss in enumerate(step_losses, start=1)
        }
        losses['alpha'] = self.alpha.detach().clone()
        losses['energy_corrupted'] = steps[0].energy.detach().mean()
        if self.clean_energy_interval and self._loss_calls % self.clean_energy_interval == 0:
            with torch.no_grad(), frozen_batchnorm_statistics(self):
                losses['energy_clean'] = self.energy(clean).mean()
        self._loss_calls += 1
        return losses

    def _stepwise_chain(
        self, clean: Tensor, corrupted: Tensor
    ) -> Tuple[List[RestorationStep], List[Tensor], List[Tensor]]:
        """The chain and its step losses, each early step backpropagated at once: steps
        1..N-1 come back detached, the last loss carries their gradients. Also whether each
        early step's parameter gradients were finite (not checked under fp16, where
        ``AmpOptimWrapper`` skips a non-finite update)."""
        fp16 = fp16_autocast_active(corrupted.device.type)
        gradients = StepwiseGradients(
            [p for p in self.parameters() if p.requires_grad],
            self.step_loss_scaler if fp16 else None,
        )
        steps, step_losses, x = [], [], corrupted
        for index in range(self.num_steps):
            step = self._step(x, create_graph=True)
            step_loss = self.criterion(step.x, clean)
            if index < self.num_steps - 1:
                gradients.backward_now(step_loss)
                step = RestorationStep(*(t.detach() for t in step))
                step_loss = step_loss.detach()
            else:
                step_loss = step_loss + gradients.surrogate(like=step_loss)
            steps.append(step)
            step_losses.append(step_loss)
            x = step.x
        return steps, step_losses, gradients.finite

    def _assert_finite(
        self,
        steps: List[RestorationStep],
        step_losses: List[Tensor],
        early_gradients_finite: Sequence[Tensor] = (),
    ) -> None:
        """One host sync for all checks; names the first offending step and quantity.

        ``early_gradients_finite``: per early step of :meth:`_stepwise_chain`, whether its
        parameter gradients (already taken) were finite.
        """
        checks = [(torch.isfinite(self.alpha.detach()).all(), None, 'alpha')]
        gradient_checks = list(early_gradients_finite)
        for index, (step, step_loss) in enumerate(zip(steps, step_losses), start=1):
            checks += [
                (torch.isfinite(step.energy.detach()).all(), index, 'energy'),
                (torch.isfinite(step.grad.detach()).all(), index, 'input gradient dE/dx'),
                (torch.isfinite(step_loss.detach()).all(), index, 'restoration loss'),
            ]
            if index <= len(gradient_checks):  # in step order: the first failure is named
                checks.append((gradient_checks[index - 1], index, 'parameter gradient'))
        ok = torch.stack([finite for finite, _, _ in checks]).tolist()
        if all(ok):
            return
        _, step_index, what = checks[ok.index(False)]
        if step_index is None:
            raise FloatingPointError(
                f'alpha is {self.alpha.item()}; stopping before the optimizer step'
            )
        scale = (
            f' (fp16 energy scale {self.energy_scaler.scale})'
            if self.grad_mode == 'exact' and fp16_autocast_active(steps[0].x.device.type)
            else ''
        )
        raise FloatingPointError(
            f'non-finite {what} at restoration step {step_index} of {self.num_steps}{scale}; '
            'stopping before the optimizer step, so the weights are unchanged'
        )
