from .energy_head import EnergyHead

__all__ = ['EnergyHead']
