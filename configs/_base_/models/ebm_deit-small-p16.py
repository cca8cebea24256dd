# The paper's ViT-S is DeiT-S (384-d, 12 layers, 6 heads). The energy pools the patch tokens
# through the backbone's final LayerNorm `ln2` (out_type='avg_featmap', final_norm=False),
# the same output the fine-tuning configs use, so every pretrained parameter is kept.
_base_ = './ebm.py'

model = dict(
    backbone=dict(
        type='VisionTransformer',
        arch='deit-small',
        img_size=224,
        patch_size=16,
        out_type='avg_featmap',
        final_norm=False,
    ),
    head=dict(in_channels=384, pool_type='none'),
)
