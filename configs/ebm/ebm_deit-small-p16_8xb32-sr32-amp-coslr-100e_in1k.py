# Table 2, SR 32x: as SR 16x with a factor of 32.
_base_ = './ebm_deit-small-p16_8xb32-sr16-amp-coslr-100e_in1k.py'

corruption = dict(_base_.corruption, scale=32)
train_dataloader = dict(
    dataset=dict(pipeline=[*_base_.augment_pipeline, corruption, _base_.pack_inputs])
)
