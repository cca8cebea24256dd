# Fine-tune ViT-S for 200 epochs, the fine-tuning length of Table 3's ViT-S results.
_base_ = './deit-small-p16_8xb128-amp-coslr-100e_in1k.py'

param_scheduler = [_base_.param_scheduler[0], dict(_base_.param_scheduler[1], end=200)]
train_cfg = dict(max_epochs=200)
