# Linear probing (MAE's protocol): LARS, base lr 0.1 per 256 images, no weight decay,
# 10 warm-up epochs, cosine decay, 90 epochs.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='bfloat16',  # bf16 autocast; 'float16' for GPUs without bf16 (docs/algorithm.md)
    loss_scale='dynamic',
    optimizer=dict(type='LARS', lr=0.1, weight_decay=0.0, momentum=0.9),
)

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=10,
        convert_to_iter_based=True,
    ),
    dict(
        type='CosineAnnealingLR',
        eta_min=0.0,
        by_epoch=True,
        begin=10,
        end=90,
        convert_to_iter_based=True,
    ),
]

train_cfg = dict(by_epoch=True, max_epochs=90, val_interval=1)
val_cfg = dict()
test_cfg = dict()

# lr above is per 256 images; 8 GPUs x 2048 gives 6.4
auto_scale_lr = dict(base_batch_size=256, enable=True)
