# UperNet on ADE20K with the ViT-S/16 of our energy pretraining: the paper's ViT-S is DeiT-S
# (384 channels, 6 heads, 12 layers; mmpretrain's arch 'deit-small', not 'small'). The recipe
# and the layer-wise lr decay (12 layers, 0.65) are those of the ViT-B config; the UperNet
# head keeps mmseg's default 512 channels.
_base_ = './upernet_ebm-vit-base-p16_8xb2-amp-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        arch='deit-small', init_cfg=dict(checkpoint='pretrain/ebm_deit-small-p16_mmseg.pth')
    ),
    neck=dict(embed_dim=384),
    decode_head=dict(in_channels=[384, 384, 384, 384], channels=512),
    auxiliary_head=dict(in_channels=384),
)
