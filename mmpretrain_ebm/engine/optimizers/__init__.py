"""Optimizer wrappers."""

from .energy_amp_optim_wrapper import EnergyAmpOptimWrapper

__all__ = ['EnergyAmpOptimWrapper']
