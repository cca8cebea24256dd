# Fine-tune an energy-pretrained ConvNeXt-T for 100 epochs (Table B), Table A's recipe.
_base_ = './deit-small-p16_8xb128-amp-coslr-100e_in1k.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ConvNeXt',
        arch='tiny',
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.'),
    ),
    head=dict(in_channels=768),
)
