# Linear probe of the CIFAR-10 study's ConvNet, as the ViT's
# vit-mini-p4_1xb256-linear-coslr-30e_cifar10-k1000.py: frozen backbone (its pooled features
# through `norm1`, the output the energy is computed from), a BatchNorm without affine
# parameters, a linear classifier; 1,000 labelled images per class, un-augmented, SGD with
# momentum, lr 0.1 per 256 images, 30 epochs, cosine. ConvNeXt's frozen_stages=2 freezes
# both stages (stem and downsampling included) but not the final norm: its lr is 0 here, so
# the whole backbone stays as loaded (SparK: `norm1` stays the identity-affine LayerNorm).
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/<pretrain>/epoch_10.pth
_base_ = './convnext-mini-p2_1xb128-coslr-100e_cifar10-k100.py'

model = dict(
    backbone=dict(frozen_stages=2, drop_path_rate=0.0),
    neck=dict(_delete_=True, type='ClsBatchNormNeck', input_features=128),
    head=dict(
        loss=dict(_delete_=True, type='CrossEntropyLoss'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)],
    ),
)
train_dataloader = dict(
    batch_size=256,
    dataset=dict(num_per_class=1000, dataset=dict(pipeline=_base_.test_pipeline)),
)
max_epochs = 30
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0),
    paramwise_cfg=dict(custom_keys={'backbone.norm1': dict(lr_mult=0.0, decay_mult=0.0)}),
)
param_scheduler = [
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0, end=max_epochs)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs))
