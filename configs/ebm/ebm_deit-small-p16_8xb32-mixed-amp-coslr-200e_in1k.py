# Table 3, Ours Mixed, ViT-S (DeiT-S): 200 epochs of the mixed pretext task.
_base_ = [
    '../_base_/models/ebm_deit-small-p16.py',
    '../_base_/datasets/imagenet_bs32_ebm-pretrain-mixed.py',
    '../_base_/schedules/ebm-pretrain_adamw_amp_coslr_200e.py',
    '../_base_/default_runtime.py',
]
