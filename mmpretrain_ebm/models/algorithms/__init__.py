from .energy_restoration import EnergyRestorationAlgorithm

__all__ = ['EnergyRestorationAlgorithm']
