# Fine-tune an energy-pretrained ViT-B/16 for 100 epochs (Table 3), Table A's recipe.
_base_ = './deit-small-p16_8xb128-amp-coslr-100e_in1k.py'

model = dict(backbone=dict(arch='base'), head=dict(in_channels=768))
