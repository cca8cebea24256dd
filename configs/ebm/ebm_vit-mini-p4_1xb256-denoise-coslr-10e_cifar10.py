# As ebm_vit-mini-p4_1xb256-gridmask-coslr-10e_cifar10.py, with another corruption:
# Denoising (the default signal levels).
_base_ = './ebm_vit-mini-p4_1xb256-gridmask-coslr-10e_cifar10.py'

corruption = dict(type='DenoisingCorruption', **_base_.corruption_norm)
train_dataloader = dict(
    dataset=dict(pipeline=[*_base_.augment_pipeline, corruption, _base_.pack_inputs])
)
