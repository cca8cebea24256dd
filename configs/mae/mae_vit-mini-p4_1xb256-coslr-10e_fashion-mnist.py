# MMPretrain's own MAE (MAE, MAEViT, MAEPretrainDecoder, MAEPretrainHead), the baseline of the
# Fashion-MNIST study (docs/results_fashion_mnist.md): the same encoder, data and schedule as
#   configs/ebm/ebm_vit-mini-p4_1xb256-gridmask-coslr-10e_fashion-mnist.py
# and MAE's recipe scaled down: 75 % of the patches masked, normalized-pixel L2 loss, a
# decoder of 2/3 the encoder width and 1/2 its depth (ViT-B: 512 of 768, 8 of 12 blocks would
# keep 2/3 and 2/3; 2 blocks of 64-d keep the decoder light, as MAE's is), Xavier init; lr
# 1.5e-4 per 256 images as MAE's (its base lr), the study also tries ours.
_base_ = [
    '../_base_/datasets/fashion-mnist_bs256_pretrain.py',
    '../_base_/schedules/fashion-mnist_adamw_coslr_10e.py',
]

model = dict(
    type='MAE',
    backbone=dict(
        type='MAEViT',
        arch=dict(embed_dims=96, num_layers=4, num_heads=3, feedforward_channels=384),
        img_size=28,
        patch_size=4,
        patch_cfg=dict(in_channels=1),  # MAEViT passes no in_channels; PatchEmbed takes it
        mask_ratio=0.75,
    ),
    neck=dict(
        type='MAEPretrainDecoder',
        num_patches=49,
        patch_size=4,
        in_chans=1,
        embed_dim=96,
        decoder_embed_dim=64,
        decoder_depth=2,
        decoder_num_heads=2,
        mlp_ratio=4.0,
    ),
    head=dict(
        type='MAEPretrainHead',
        norm_pix=True,
        patch_size=4,
        in_channels=1,
        loss=dict(type='PixelReconstructionLoss', criterion='L2'),
    ),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0),
    ],
)
optim_wrapper = dict(optimizer=dict(lr=1.5e-4))
