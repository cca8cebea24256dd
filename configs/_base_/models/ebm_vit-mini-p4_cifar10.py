# The CIFAR-10 study's encoder: a 4-layer, 128-d ViT (4 heads, MLP 512) on 4-px patches of
# 32-px RGB images (8 x 8 = 64 patch tokens), pooled as the DeiT-S of the ImageNet configs
# (patch tokens averaged through `ln2`, the output the fine-tuning configs use). Every method
# of the study (energy, MAE, scratch) uses it. The size the CPU budget allows: about 60
# images/s of energy pretraining on 2 cores (issue 30), ~14 min per epoch of 50,000 images;
# 6 layers x 192 would cost about 3x as much per image.
_base_ = './ebm.py'

vit_mini_p4_cifar10 = dict(
    type='VisionTransformer',
    arch=dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512),
    img_size=32,
    patch_size=4,
    in_channels=3,
    out_type='avg_featmap',
    final_norm=False,
)
# eager double backward: on CPUs the compiled step is no faster at this size
# (docs/performance.md), and the Fashion-MNIST study's minutes were measured this way
model = dict(
    backbone=vit_mini_p4_cifar10, head=dict(in_channels=128, pool_type='none'), grad_mode='exact'
)
