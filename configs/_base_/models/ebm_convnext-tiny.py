# ConvNeXt-T (Table B). Its default output is already pooled and normalized ([B, 768]).
# with_cp must stay off: reentrant checkpointing breaks the double backward.
_base_ = './ebm.py'

model = dict(
    backbone=dict(type='ConvNeXt', arch='tiny', drop_path_rate=0.0, with_cp=False),
    head=dict(in_channels=768, pool_type='none'))
