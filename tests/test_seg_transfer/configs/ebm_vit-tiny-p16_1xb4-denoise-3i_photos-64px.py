# A few iterations of our energy pretraining, for the ADE20K transfer test: the ViT of the
# paper's pretraining configs (out_type='avg_featmap', final_norm=False) shrunk to 32
# channels, keeping the 12 layers and 16-px patches of the UperNet config, on 64-px photo
# crops (train_dataloader.dataset.data_root is set by the test).
_base_ = [
    '../../../configs/_base_/models/ebm_deit-small-p16.py',
    '../../../configs/_base_/default_runtime.py',
]

img_norm = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
data_preprocessor = dict(type='SelfSupDataPreprocessor', to_rgb=True, **img_norm)
model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True, embed_dims=32, num_layers=12, num_heads=2, feedforward_channels=64
        ),
        img_size=64,
    ),
    head=dict(in_channels=32),
)

train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CustomDataset',
        data_root='',
        with_label=False,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.5, 1.0)),
            dict(type='RandomFlip', prob=0.5),
            dict(type='DenoisingCorruption', **img_norm),
            dict(type='PackInputs', meta_keys=('img_path', 'corruption')),
        ],
    ),
)

optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)
)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=3)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=3),
)
log_processor = dict(by_epoch=False)
