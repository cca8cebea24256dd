# Table 3, Ours Mixed, ViT-B/16 with 800 pretraining epochs.
_base_ = './ebm_vit-base-p16_8xb256-mixed-amp-coslr-200e_in1k.py'

param_scheduler = [_base_.param_scheduler[0], dict(_base_.param_scheduler[1], end=800)]
train_cfg = dict(max_epochs=800)
