# As ebm_vit-mini-p4_1xb256-gridmask-coslr-10e_cifar10.py, with another corruption:
# Random boxes (the 'large' preset of Tables 1-2: each box 2-8 % of the image, whatever its size).
_base_ = './ebm_vit-mini-p4_1xb256-gridmask-coslr-10e_cifar10.py'

corruption = dict(type='RandomBoxMaskCorruption', preset='large', **_base_.corruption_norm)
train_dataloader = dict(
    dataset=dict(pipeline=[*_base_.augment_pipeline, corruption, _base_.pack_inputs])
)
