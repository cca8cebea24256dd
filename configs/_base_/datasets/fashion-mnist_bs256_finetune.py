# Fashion-MNIST classification for the study's fine-tuning and linear probing: a labelled
# subset of the 60,000 training images (`ClassBalancedSplit`: k images per class drawn by a
# seed, none of the 500 per class held out for validation), random 2-px shifts and flips;
# validation on the held-out 5,000, test on the 10,000 test images, top-1 (mmpretrain's
# Accuracy). The number of labels: --cfg-options train_dataloader.dataset.num_per_class=K
# (None = all the 55,000 not held out).
data_root = 'data/fashion_mnist'
img_norm = dict(mean=[72.94], std=[90.02])
data_preprocessor = dict(num_classes=10, **img_norm)

fashion_mnist = dict(type='FashionMNIST', data_root=data_root, download=False)
train_pipeline = [
    dict(type='RandomCrop', crop_size=28, padding=2, padding_mode='edge'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=256,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='ClassBalancedSplit',
        dataset=dict(fashion_mnist, test_mode=False, pipeline=train_pipeline),
        part='train',
        num_per_class=100,
        holdout_per_class=500,
        seed=0,
    ),
)
val_dataloader = dict(
    batch_size=1000,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='ClassBalancedSplit',
        dataset=dict(fashion_mnist, test_mode=False, pipeline=test_pipeline),
        part='holdout',
        holdout_per_class=500,
        seed=0,
    ),
)
val_evaluator = dict(type='Accuracy', topk=(1,))
test_dataloader = dict(
    val_dataloader, dataset=dict(fashion_mnist, test_mode=True, pipeline=test_pipeline)
)
test_evaluator = val_evaluator
