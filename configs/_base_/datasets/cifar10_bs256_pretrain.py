# CIFAR-10 (32 x 32 RGB, 50,000 training images) for self-supervised pretraining: the
# training images without their labels, each a random 50-100 % crop resized back to 32 px
# and flipped, as the Fashion-MNIST configs do. Shared by the energy and the MAE pretraining
# configs, so both see the same data. Data and the official release: cifar10_source.py.
_base_ = './cifar10_source.py'

img_size = 32
data_preprocessor = dict(type='SelfSupDataPreprocessor', to_rgb=_base_.to_rgb, **_base_.img_norm)

augment_pipeline = [
    *_base_.load_steps,
    dict(
        type='RandomResizedCrop',
        scale=img_size,
        crop_ratio_range=(0.5, 1.0),
        backend='pillow',
        interpolation='bicubic',
    ),
    dict(type='RandomFlip', prob=0.5),
]
pack_inputs = dict(type='PackInputs')
# The paper's mixed task (Sec. 3.2, configs/_base_/datasets/imagenet_bs32_ebm-pretrain-mixed.py)
# at 32 px, for the energy configs of every backbone: random large boxes (relative sizes as at
# 224 px), 4x super-resolution (8 x 8 px, one pixel per 4-px cell, as 16x is at 224 px),
# denoising or colorization, one drawn uniformly per image.
mixed_corruption = dict(
    type='MixedCorruption',
    corruptions=[
        dict(type='RandomBoxMaskCorruption', preset='large', **_base_.corruption_norm),
        dict(type='SuperResolutionCorruption', scale=4, **_base_.corruption_norm),
        dict(type='DenoisingCorruption', **_base_.corruption_norm),
        dict(type='ColorizationCorruption', **_base_.corruption_norm),
    ],
)

train_dataloader = dict(
    batch_size=256,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(_base_.train_set, pipeline=[*augment_pipeline, pack_inputs]),
)

# Inference on given image files (mmpretrain_ebm.apis): the short edge resized to 32 px and
# center-cropped, normalized by the data preprocessor as in pretraining. The test dataloader
# only carries this pipeline (tools/test.py refuses pretraining configs).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge', scale=img_size, edge='short', backend='pillow', interpolation='bicubic'
    ),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='PackInputs'),
]
test_dataloader = dict(
    batch_size=256,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CustomDataset',
        data_root=_base_.data_root,
        data_prefix='test',
        pipeline=test_pipeline,
    ),
)
test_cfg = dict(type='TestLoop')
test_evaluator = []

# Online k-NN top-1 (weighted, k=20, T=0.07) of the encoder's pooled features, before training
# and after every epoch: the neighbours are the 1,000 labelled images of the 1,000-label
# fine-tune (100 per class, seed 0); classified are 100 per class of the fine-tunes' validation
# split (the first 100 of each class's 500 held-out images: the same seed, the same order);
# never the test images. Leaf configs add it by one line:
#   custom_hooks = [..., _base_.knn_hook]
knn_pipeline = [*_base_.load_steps, dict(type='PackInputs')]
knn_hook = dict(
    type='KNNEvaluationHook',
    train_dataset=dict(
        type='ClassBalancedSplit',
        dataset=dict(_base_.train_set, pipeline=knn_pipeline),
        part='train',
        num_per_class=100,
        holdout_per_class=500,
        seed=0,
    ),
    val_dataset=dict(
        type='ClassBalancedSplit',
        dataset=dict(_base_.train_set, pipeline=knn_pipeline),
        part='holdout',
        holdout_per_class=100,
        seed=0,
    ),
    max_train=1000,  # caps; both splits hold exactly 1,000 images
    max_val=1000,
    interval=1,
)
