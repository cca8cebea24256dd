# Linear probe of the CIFAR-10 study's ViT (MAE's protocol, scaled down, as the Fashion-MNIST
# probe): frozen backbone (its pooled features, the output the energy is computed from), a
# BatchNorm without affine parameters, a linear classifier; 1,000 labelled images per class,
# un-augmented, SGD with momentum, lr 0.1 per 256 images, 30 epochs, cosine. Validation and
# test as the fine-tune.
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/<pretrain>/epoch_10.pth
_base_ = './vit-mini-p4_1xb128-coslr-100e_cifar10-k100.py'

model = dict(
    backbone=dict(frozen_stages=4, drop_path_rate=0.0),
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
)
param_scheduler = [
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0, end=max_epochs)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs))
