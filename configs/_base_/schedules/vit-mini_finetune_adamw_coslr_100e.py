# The fine-tune schedule of the mini ViTs' 1,000-label configs (Fashion-MNIST, CIFAR-10),
# chosen on Fashion-MNIST's validation split (docs/fashion_mnist/finetune_recipe.md): AdamW,
# lr 3e-3 per 256 images, no layer-wise lr decay, 5 warm-up epochs, cosine, 100 epochs;
# validation at the end (the configs keep one checkpoint, at the end).
max_epochs = 100
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=3e-3, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='LearningRateDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=1.0,
        flat_decay_mult=0.0,
        custom_keys={'.pos_embed': dict(decay_mult=0.0), '.cls_token': dict(decay_mult=0.0)},
    ),
)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
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
        end=max_epochs,
        convert_to_iter_based=True,
    ),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=256, enable=True)
