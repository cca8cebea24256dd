"""visualization of mmpretrain_ebm."""
