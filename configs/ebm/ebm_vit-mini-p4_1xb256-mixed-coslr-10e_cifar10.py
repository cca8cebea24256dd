# As ebm_vit-mini-p4_1xb256-gridmask-coslr-10e_cifar10.py, with the mixed task of the paper
# (Sec. 3.2, configs/_base_/datasets/imagenet_bs32_ebm-pretrain-mixed.py) at 32 px: random
# large boxes (relative sizes: as at 224 px), 4x super-resolution (8 x 8 px, one pixel per
# patch, as 16x is at 224 px), denoising or colorization, one drawn uniformly per image.
_base_ = './ebm_vit-mini-p4_1xb256-gridmask-coslr-10e_cifar10.py'

corruption = dict(
    type='MixedCorruption',
    corruptions=[
        dict(type='RandomBoxMaskCorruption', preset='large', **_base_.corruption_norm),
        dict(type='SuperResolutionCorruption', scale=4, **_base_.corruption_norm),
        dict(type='DenoisingCorruption', **_base_.corruption_norm),
        dict(type='ColorizationCorruption', **_base_.corruption_norm),
    ],
)
train_dataloader = dict(
    dataset=dict(pipeline=[*_base_.augment_pipeline, corruption, _base_.pack_inputs])
)
