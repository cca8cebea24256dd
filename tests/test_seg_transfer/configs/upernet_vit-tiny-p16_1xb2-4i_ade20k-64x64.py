# Our ViT-B UperNet ADE20K config shrunk for the transfer test: the 32-channel, 12-layer ViT
# of ebm_vit-tiny-p16_1xb4-denoise-3i_photos-64px.py, 64x64 crops, 4 iterations, fp32 (CPU).
# Everything else (layer outputs, neck, heads, layer-wise lr decay, data pipeline, metric)
# is the real config's. The test sets train/val data_root and the backbone checkpoint, and
# puts tests/test_seg_transfer on PYTHONPATH for the probe hook (transfer_probe.py).
_base_ = (
    '../../../configs/benchmarks/mmsegmentation/'
    'upernet_ebm-vit-base-p16_8xb2-amp-160k_ade20k-512x512.py'
)

crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch=dict(
            _delete_=True, embed_dims=32, num_layers=12, num_heads=2, feedforward_channels=64
        ),
        img_size=64,
    ),
    neck=dict(embed_dim=32),
    decode_head=dict(in_channels=[32, 32, 32, 32], channels=16),
    auxiliary_head=dict(in_channels=32, channels=16),
    test_cfg=dict(crop_size=crop_size, stride=(43, 43)),
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(128, 64), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 64), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(pipeline=train_pipeline)
)
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# lr 1e-2 instead of 1e-4 so that 4 iterations move the heads: the test expects mIoU > 0
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(_base_.optim_wrapper.optimizer, lr=1e-2),
    constructor=_base_.optim_wrapper.constructor,
    paramwise_cfg=_base_.optim_wrapper.paramwise_cfg,
)
param_scheduler = []  # constant lr: no warm-up or decay within 4 iterations
train_cfg = dict(max_iters=4, val_interval=4)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=4))
randomness = dict(seed=0)

custom_imports = dict(
    imports=['mmpretrain.models', 'mmpretrain_ebm', 'transfer_probe'], allow_failed_imports=False
)
custom_hooks = [dict(type='TransferProbeHook')]
