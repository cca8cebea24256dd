"""engine of mmpretrain_ebm."""
