"""Environment helpers of mmpretrain_ebm."""
