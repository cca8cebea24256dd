# A 4-layer, 96-d ViT on 4-px patches of 28-px grey images (7 x 7 = 49 patches): the encoder
# of the Fashion-MNIST study, pooled as the DeiT-S of the ImageNet configs (patch tokens
# averaged through `ln2`, the output the fine-tuning configs use).
_base_ = './ebm.py'

vit_mini_p4 = dict(
    type='VisionTransformer',
    arch=dict(embed_dims=96, num_layers=4, num_heads=3, feedforward_channels=384),
    img_size=28,
    patch_size=4,
    in_channels=1,
    out_type='avg_featmap',
    final_norm=False,
)
# eager double backward: at batch 256 on 2 CPU cores the compiled step is no faster
# (docs/performance.md), and the study's recorded minutes were measured this way
model = dict(backbone=vit_mini_p4, head=dict(in_channels=96, pool_type='none'), grad_mode='exact')
