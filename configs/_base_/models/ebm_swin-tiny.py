# Swin-T (Table B): the head averages the last stage's [B, 768, 7, 7] map.
# with_cp must stay off: reentrant checkpointing breaks the double backward.
_base_ = './ebm.py'

model = dict(
    backbone=dict(
        type='SwinTransformer', arch='tiny', img_size=224, drop_path_rate=0.0, with_cp=False
    ),
    head=dict(in_channels=768, pool_type='gap'),
)
