# Table 1, Gridded (16): ViT-S (DeiT-S), 16-px cells (the ViT patch grid) with 70 % masked,
# 100 epochs on 8 GPUs x 32 images (Table A's batch 256).
_base_ = [
    '../_base_/models/ebm_deit-small-p16.py',
    '../_base_/datasets/imagenet_bs32_ebm-pretrain.py',
    '../_base_/schedules/ebm-pretrain_adamw_amp_coslr_100e.py',
    '../_base_/default_runtime.py',
]

corruption = dict(type='GridMaskCorruption', cell_size=16, mask_ratio=0.7, **_base_.img_norm)
train_dataloader = dict(
    dataset=dict(pipeline=[*_base_.augment_pipeline, corruption, _base_.pack_inputs])
)
