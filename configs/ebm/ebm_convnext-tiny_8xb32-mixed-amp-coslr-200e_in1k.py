# Table B, ConvNeXt-T: 200 epochs of the mixed pretext task (the paper does not name the
# pretext task of Table B; we use its headline, mixed, task).
_base_ = [
    '../_base_/models/ebm_convnext-tiny.py',
    '../_base_/datasets/imagenet_bs32_ebm-pretrain-mixed.py',
    '../_base_/schedules/ebm-pretrain_adamw_amp_coslr_200e.py',
    '../_base_/default_runtime.py',
]
