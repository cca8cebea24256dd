# Table 1, Gridded (32): as Gridded (16) with 32-px cells.
_base_ = './ebm_deit-small-p16_8xb32-gridmask16-amp-coslr-100e_in1k.py'

corruption = dict(_base_.corruption, cell_size=32)
train_dataloader = dict(
    dataset=dict(pipeline=[*_base_.augment_pipeline, corruption, _base_.pack_inputs])
)
