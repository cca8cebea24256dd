_base_ = './ebm-pretrain_adamw_amp_coslr_100e.py'

param_scheduler = [_base_.param_scheduler[0], dict(_base_.param_scheduler[1], end=800)]
train_cfg = dict(max_epochs=800)
