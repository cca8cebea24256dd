# Fine-tuning recipe of Table A: AdamW(0.9, 0.999), base lr 1e-3 per 256 images (4e-3 at the
# paper's batch 1024; see below), weight decay 0.05,
# layer-wise lr decay 0.75, cosine decay, mixed precision, 100 epochs. Warm-up (not in the
# paper): 5 epochs, as MAE's fine-tuning. 1-D parameters (norms, biases), position
# embeddings and the class token get no weight decay.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='bfloat16',  # bf16 autocast; 'float16' for GPUs without bf16 (docs/algorithm.md)
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='LearningRateDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.75,
        flat_decay_mult=0.0,
        custom_keys={
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
        eta_min=1e-6,
        by_epoch=True,
        begin=5,
        end=100,
        convert_to_iter_based=True,
    ),
]

train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
val_cfg = dict()
test_cfg = dict()

# One reading of Table A's "base learning rate" for both stages: per 256 images. Table A's
# fine-tuning column is MAE's Table 9 value for value, and MAE defines
# lr = base lr x batch / 256; pretraining (1e-4 at batch 256) reads the same either way.
# The runner scales lr to the real total batch: 8 GPUs x 128 = 1024 gives 4e-3.
auto_scale_lr = dict(base_batch_size=256, enable=True)
