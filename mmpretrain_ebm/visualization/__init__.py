"""Drawing restoration chains (shared by the training hook and the visualization tool)."""

from .restoration_chain import (
    RestorationChain,
    compute_restoration_chain,
    draw_curves,
    draw_restoration_chains,
    find_corruptions,
    find_crop_size,
    load_corrupted_batch,
    mean_psnr,
    number_repeated_corruptions,
    psnr,
    restoration_chains,
    seeded_rng,
    step_alignment,
    to_uint8_images,
)

__all__ = [
    'RestorationChain',
    'compute_restoration_chain',
    'draw_curves',
    'draw_restoration_chains',
    'find_corruptions',
    'find_crop_size',
    'load_corrupted_batch',
    'mean_psnr',
    'number_repeated_corruptions',
    'psnr',
    'restoration_chains',
    'seeded_rng',
    'step_alignment',
    'to_uint8_images',
]
