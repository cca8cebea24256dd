# MMPretrain's own SparK (SparK, SparseConvNeXt, SparKLightDecoder, SparKPretrainHead), the
# baseline of the ConvNet energy pretraining (issue 31, docs/convnet.md): the same dense
# architecture as configs/_base_/models/ebm_convnext-mini-p2_cifar10.py (a 2-px stem, 1 block
# of 64 channels at 16 x 16, 4 of 128 at 8 x 8), in its sparse form, with the same data,
# schedule shape (50 warm-up iterations, cosine, 10 epochs) and online k-NN line as
#   configs/ebm/ebm_convnext-mini-p2_1xb256-mixed-coslr-10e_cifar10.py
# and SparK's recipe (mmpretrain's spark_sparse-convnext-small_16xb256-amp-coslr-800e_in1k.py)
# scaled down as the MAE config scales MAE's: 60 % of the cells of the encoder's 8 x 8 output
# grid masked (4-px cells, the total stride of the two stages: as the ViT's patches and MAE's
# mask), sparse LayerNorm, features of both stages into a light decoder of half the encoder
# width (64 -> 32 -> 16 channels, 16 -> 32 px), normalized-pixel L2 on the masked cells;
# LAMB (betas 0.9, 0.95), weight decay 0.04 rising to 0.2 by a cosine, gradients clipped to
# norm 5, no decay on biases, norms and mask tokens; lr 1e-4 per 256 images (mmpretrain's
# 2e-4 * 4096 / 512 = 1.6e-3 for 4,096 images), full precision on CPUs. Drop path 0, as the
# energy model. The checkpoint's `backbone.` weights are the dense ConvNeXt's, less its final
# norm (the fine-tunes start `norm1` anew). Equal compute (SparK for energy's minutes):
#   --cfg-options train_cfg.max_epochs=E param_scheduler.1.end=E param_scheduler.2.end=E
_base_ = [
    '../_base_/datasets/cifar10_bs256_pretrain.py',
    '../_base_/schedules/fashion-mnist_adamw_coslr_10e.py',
]

model = dict(
    type='SparK',
    input_size=32,
    downsample_raito=4,  # the encoder's total stride (sic, mmpretrain's name)
    mask_ratio=0.6,
    enc_dec_norm_cfg=dict(type='SparseLN2d', eps=1e-6),
    enc_dec_norm_dim=128,
    backbone=dict(
        type='SparseConvNeXt',
        arch=dict(depths=[1, 4], channels=[64, 128]),
        in_channels=3,
        stem_patch_size=2,
        out_indices=[0, 1],
        gap_before_output=False,
        drop_path_rate=0.0,
    ),
    neck=dict(
        type='SparKLightDecoder',
        feature_dim=64,
        upsample_ratio=4,  # equal to downsample_raito
        mid_channels=0,
        last_act=False,
    ),
    head=dict(
        type='SparKPretrainHead',
        patch_size=4,  # equal to downsample_raito: one target patch per mask cell
        loss=dict(type='PixelReconstructionLoss', criterion='L2'),
    ),
)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='Lamb', lr=1e-4, betas=(0.9, 0.95), weight_decay=0.04),
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(
        _delete_=True,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={'mask_token': dict(decay_mult=0.0)},
    ),
)
param_scheduler = [
    *_base_.param_scheduler,
    dict(
        type='CosineAnnealingWeightDecay',
        eta_min=0.2,
        by_epoch=True,
        begin=0,
        end=_base_.max_epochs,
        convert_to_iter_based=True,
    ),
]
custom_hooks = [_base_.knn_hook]
