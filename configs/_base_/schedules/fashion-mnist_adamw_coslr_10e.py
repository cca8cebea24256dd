# The Fashion-MNIST study's schedule, shared by its pretraining configs: AdamW(0.9, 0.95),
# weight decay 0.05, lr 1e-3 per 256 images, 50 warm-up iterations, cosine decay to 0 over
# `max_epochs` (per iteration). Full precision: the study runs on CPUs as well as GPUs.
# Another length: --cfg-options train_cfg.max_epochs=E param_scheduler.1.end=E.
# Includes the runtime (its hooks are changed here).
_base_ = ['../default_runtime.py']

max_epochs = 10
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(
        flat_decay_mult=0.0,
        custom_keys={
            'alpha': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0),
            '.cls_token': dict(decay_mult=0.0),
            '.mask_token': dict(decay_mult=0.0),
        },
    ),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=50),
    dict(
        type='CosineAnnealingLR',
        eta_min=0.0,
        by_epoch=True,
        begin=0,
        end=max_epochs,
        convert_to_iter_based=True,
    ),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=256, enable=True)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1),
)
