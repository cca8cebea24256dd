# MMPretrain's own MAE (MAE, MAEViT, MAEPretrainDecoder, MAEPretrainHead), the baseline of
# issue 30's CIFAR-10 study: the same encoder, data, schedule and online k-NN as
#   configs/ebm/ebm_vit-mini-p4_1xb256-gridmask-coslr-10e_cifar10.py
# and MAE's recipe scaled down as in the Fashion-MNIST MAE config: 75 % of the patches masked,
# normalized-pixel L2 loss, a 2-block decoder of half the encoder width, Xavier init; lr
# 1.5e-4 per 256 images as MAE's (its base lr). Equal compute (MAE for energy's minutes):
#   --cfg-options train_cfg.max_epochs=E param_scheduler.1.end=E
_base_ = [
    '../_base_/datasets/cifar10_bs256_pretrain.py',
    '../_base_/schedules/fashion-mnist_adamw_coslr_10e.py',
]

model = dict(
    type='MAE',
    backbone=dict(
        type='MAEViT',
        arch=dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512),
        img_size=32,
        patch_size=4,
        mask_ratio=0.75,
    ),
    neck=dict(
        type='MAEPretrainDecoder',
        num_patches=64,
        patch_size=4,
        in_chans=3,
        embed_dim=128,
        decoder_embed_dim=64,
        decoder_depth=2,
        decoder_num_heads=2,
        mlp_ratio=4.0,
    ),
    head=dict(
        type='MAEPretrainHead',
        norm_pix=True,
        patch_size=4,
        in_channels=3,
        loss=dict(type='PixelReconstructionLoss', criterion='L2'),
    ),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0),
    ],
)
optim_wrapper = dict(optimizer=dict(lr=1.5e-4))
custom_hooks = [_base_.knn_hook]
