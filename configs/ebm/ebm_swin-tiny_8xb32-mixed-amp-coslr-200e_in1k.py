# Table B, Swin-T: 200 epochs of the mixed pretext task (see the ConvNeXt-T config).
_base_ = [
    '../_base_/models/ebm_swin-tiny.py',
    '../_base_/datasets/imagenet_bs32_ebm-pretrain-mixed.py',
    '../_base_/schedules/ebm-pretrain_adamw_amp_coslr_200e.py',
    '../_base_/default_runtime.py',
]
