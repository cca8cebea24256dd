# UperNet on ADE20K with the ViT-B/16 of our energy pretraining (paper, Table C: 47.6 mIoU).
# Recipe of mmseg's MAE UperNet: AdamW lr 1e-4, weight decay 0.05, layer-wise lr decay 0.65,
# drop path 0.1, AMP, 8 GPUs x 2 images, 160k iterations.
_base_ = [
    '_base_/models/upernet.py',
    '_base_/datasets/ade20k_512x512.py',
    '_base_/default_runtime.py',
    '_base_/schedules/schedule_160k.py',
]

# mmpretrain's VisionTransformer, the module our pretraining trains (the converted checkpoint
# loads key for key). It hands the token maps of layers 4, 6, 8 and 12 to Feature2Pyramid,
# which rescales them to strides 4, 8, 16 and 32, as mmseg's MAE and BEiT UperNet models do.
# final_norm=False as in pretraining, where the final LayerNorm (ln2) normalizes the pooled
# token only: a dense backbone has no pooled token, and the converter drops ln2.
model = dict(
    backbone=dict(
        type='mmpretrain.VisionTransformer',
        arch='base',
        img_size=512,
        patch_size=16,
        out_indices=(3, 5, 7, 11),
        out_type='featmap',
        final_norm=False,
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='pretrain/ebm_vit-base-p16_mmseg.pth'),
    ),
    neck=dict(
        type='Feature2Pyramid',
        embed_dim=768,
        rescales=[4, 2, 1, 0.5],
        norm_cfg=dict(type='SyncBN', requires_grad=True),
    ),
    decode_head=dict(in_channels=[768, 768, 768, 768], channels=768),
    auxiliary_head=dict(in_channels=768),
)

# Layer-wise lr decay: the lr of a ViT parameter is scaled by 0.65 ** (13 - depth), with
# depth 0 for the patch embedding, cls token and position embedding, i + 1 for layer i and
# 13 (scale 1) for the neck and the heads: the depths of mmpretrain's
# VisionTransformer.get_layer_depth and of mmseg's MAE/BEiT recipe. mmseg's layer-decay
# constructor only knows mmseg's own BEiT/MAE classes and mmpretrain's only mmpretrain's
# classifiers, so the decay is spelled out as lr multipliers of mmseg's
# ForceDefaultOptimWrapperConstructor, which then still applies the default rules: no weight
# decay for norms, biases, and the cls token and position embedding.
__num_layers = 12
__decay = 0.65
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='bfloat16',  # bf16 autocast; 'float16' for GPUs without bf16 (docs/algorithm.md)
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='ForceDefaultOptimWrapperConstructor',
    paramwise_cfg=dict(
        force_default_settings=True,
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={
            'backbone.cls_token': dict(lr_mult=__decay ** (__num_layers + 1), decay_mult=0.0),
            'backbone.pos_embed': dict(lr_mult=__decay ** (__num_layers + 1), decay_mult=0.0),
            'backbone.patch_embed.': dict(lr_mult=__decay ** (__num_layers + 1)),
            **{
                f'backbone.layers.{i}.': dict(lr_mult=__decay ** (__num_layers - i))
                for i in range(__num_layers)
            },
        },
    ),
)
