# Table 1, Random small: 75 boxes of normalized size U(0.01, 0.025) (App. A.3).
_base_ = './ebm_deit-small-p16_8xb32-randmask-large-amp-coslr-100e_in1k.py'

corruption = dict(_base_.corruption, preset='small')
train_dataloader = dict(
    dataset=dict(pipeline=[*_base_.augment_pipeline, corruption, _base_.pack_inputs])
)
