# ViT-B/16 (768-d, 12 layers, 12 heads), pooled as in ebm_deit-small-p16.py.
_base_ = './ebm_deit-small-p16.py'

model = dict(backbone=dict(arch='base'), head=dict(in_channels=768))
