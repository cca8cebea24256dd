"""models of mmpretrain_ebm."""
