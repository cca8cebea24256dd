# Linear probe of an energy-pretrained ViT-B/16 (see the ViT-S linear-probe config).
_base_ = './deit-small-p16_8xb2048-linear-coslr-90e_in1k.py'

model = dict(backbone=dict(arch='base'), neck=dict(input_features=768), head=dict(in_channels=768))
