# CIFAR-10 classification for the study's fine-tuning and linear probing: a labelled subset of
# the 50,000 training images (`ClassBalancedSplit`: k images per class drawn by a seed, none
# of the 500 per class held out for validation), random crops of the 4-px padded image and
# flips; validation on the held-out 5,000, test on the 10,000 test images, top-1 (mmpretrain's
# Accuracy). The number of labels: --cfg-options train_dataloader.dataset.num_per_class=K
# (None = all the 45,000 not held out). Data and the official release: cifar10_source.py.
_base_ = './cifar10_source.py'

data_preprocessor = dict(num_classes=10, to_rgb=_base_.to_rgb, **_base_.img_norm)

train_pipeline = [
    *_base_.load_steps,
    dict(type='RandomCrop', crop_size=32, padding=4, padding_mode='reflect'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [*_base_.load_steps, dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=256,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='ClassBalancedSplit',
        dataset=dict(_base_.train_set, pipeline=train_pipeline),
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
        dataset=dict(_base_.train_set, pipeline=test_pipeline),
        part='holdout',
        holdout_per_class=500,
        seed=0,
    ),
)
val_evaluator = dict(type='Accuracy', topk=(1,))
test_dataloader = dict(val_dataloader, dataset=dict(_base_.test_set, pipeline=test_pipeline))
test_evaluator = val_evaluator
