# As ebm_vit-mini-p4_1xb256-gridmask-coslr-10e_cifar10.py, with another corruption:
# 4x super-resolution (an 8 x 8 image, one pixel per patch, as SR 16x is at 224 px).
_base_ = './ebm_vit-mini-p4_1xb256-gridmask-coslr-10e_cifar10.py'

corruption = dict(type='SuperResolutionCorruption', scale=4, **_base_.corruption_norm)
train_dataloader = dict(
    dataset=dict(pipeline=[*_base_.augment_pipeline, corruption, _base_.pack_inputs])
)
