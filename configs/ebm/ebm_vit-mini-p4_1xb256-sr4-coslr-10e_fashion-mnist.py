# As ebm_vit-mini-p4_1xb256-gridmask-coslr-10e_fashion-mnist.py, with another
# corruption: 4x super-resolution (a 7 x 7 image, one pixel per patch, as SR 16x is at 224 px).
_base_ = './ebm_vit-mini-p4_1xb256-gridmask-coslr-10e_fashion-mnist.py'

corruption = dict(type='SuperResolutionCorruption', scale=4, **_base_.img_norm)
train_dataloader = dict(
    dataset=dict(pipeline=[*_base_.augment_pipeline, corruption, _base_.pack_inputs])
)
