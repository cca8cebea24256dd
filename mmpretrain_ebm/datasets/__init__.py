"""datasets of mmpretrain_ebm."""
