# Table 2, Colorization: the network restores color from the grayscale image. ViT-S,
# 100 epochs.
_base_ = [
    '../_base_/models/ebm_deit-small-p16.py',
    '../_base_/datasets/imagenet_bs32_ebm-pretrain.py',
    '../_base_/schedules/ebm-pretrain_adamw_amp_coslr_100e.py',
    '../_base_/default_runtime.py',
]

corruption = dict(type='ColorizationCorruption', **_base_.img_norm)
train_dataloader = dict(
    dataset=dict(pipeline=[*_base_.augment_pipeline, corruption, _base_.pack_inputs])
)
