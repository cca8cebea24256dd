# As ebm_vit-mini-p4_1xb256-gridmask-coslr-10e_cifar10.py, with the mixed task of the paper
# at 32 px (configs/_base_/datasets/cifar10_bs256_pretrain.py, `mixed_corruption`): random
# large boxes, 4x super-resolution, denoising or colorization, one drawn uniformly per image.
_base_ = './ebm_vit-mini-p4_1xb256-gridmask-coslr-10e_cifar10.py'

train_dataloader = dict(
    dataset=dict(pipeline=[*_base_.augment_pipeline, _base_.mixed_corruption, _base_.pack_inputs])
)
