# Pretraining recipe of Table A: AdamW(0.9, 0.95), base lr 1e-4 per 256 images, weight decay
# 0.05, cosine decay, mixed precision. The paper gives no warm-up; we warm up linearly for
# 5 epochs. Norms, biases, position embedding, class token and the step size alpha get no
# weight decay (as MAE, which the paper follows). EnergyAmpOptimWrapper is mmengine's
# AmpOptimWrapper that also checkpoints the fp16 energy scales (unused under bf16).
optim_wrapper = dict(
    type='EnergyAmpOptimWrapper',
    dtype='bfloat16',  # bf16 autocast; 'float16' for GPUs without bf16 (docs/algorithm.md)
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(
        flat_decay_mult=0.0,
        custom_keys={
            'alpha': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0),
            '.cls_token': dict(decay_mult=0.0),
            '.absolute_pos_embed': dict(decay_mult=0.0),
            '.relative_position_bias_table': dict(decay_mult=0.0),
        },
    ),
)

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=5,
        convert_to_iter_based=True,
    ),
    dict(
        type='CosineAnnealingLR',
        eta_min=0.0,
        by_epoch=True,
        begin=5,
        end=100,
        convert_to_iter_based=True,
    ),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100)

# lr above is per 256 images: the runner scales it to the real total batch size
# (8 GPUs x 32 = 256 gives exactly 1e-4).
auto_scale_lr = dict(base_batch_size=256, enable=True)
