# ImageNet-1k for energy-based pretraining (Table A): RandomResizedCrop + flip only, then a
# corruption that turns each image into [clean, corrupted]. Leaf configs insert their
# corruption between `augment_pipeline` and `pack_inputs`, e.g.
#   pipeline=[*_base_.augment_pipeline, corruption, _base_.pack_inputs]
dataset_type = 'ImageNet'
data_root = 'data/imagenet/'

# RGB statistics (0..255) shared by the data preprocessor and every corruption transform:
# masked pixels take the mean, i.e. 0 after normalization.
img_norm = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
data_preprocessor = dict(type='SelfSupDataPreprocessor', to_rgb=True, **img_norm)

augment_pipeline = [
    # mmcv's LoadImageFromFile, but an unreadable file costs a warning and the sample (another
    # is drawn), not the run; more than 10 % failed loads stop it (mmpretrain_ebm.datasets)
    dict(type='LoadImageFromFileOrSkip', max_bad_share=0.1),
    # the paper follows MAE (App. A.1); MAE crops 20-100 % of the image
    dict(
        type='RandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.2, 1.0),
        backend='pillow',
        interpolation='bicubic',
    ),
    dict(type='RandomFlip', prob=0.5),
]
pack_inputs = dict(type='PackInputs', meta_keys=('img_path', 'corruption'))

train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=[*augment_pipeline, pack_inputs],
    ),
)

# Inference on given images (docs/api.md: FeatureExtractor, RestorationInferencer,
# inference_model): the short edge resized to the training crop, center-cropped, normalized by
# the data preprocessor as in pretraining. mmengine's Runner takes a test dataloader only with
# a test loop and an evaluator; pretraining has no metric, so the evaluator is empty and
# tools/test.py refuses pretraining configs.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=224, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
test_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', pipeline=test_pipeline),
)
test_cfg = dict(type='TestLoop')
test_evaluator = []

# Before the first iteration, alpha is set so that the first restoration step moves the
# normalized pixels of the first batch by RMS 0.03 (docs/algorithm.md, "Initial step size":
# a fixed alpha fits one resolution and backbone only). Then pictures of restoration chains
# (corrupted, step 1..N, clean) of 4 fixed training images, one per corruption of the
# pipeline, every 5000 iterations and at the end.
custom_hooks = [
    dict(type='InitialStepSizeHook', target_rms=0.03),
    dict(type='RestorationVisualizationHook', interval=5000, num_images=4),
]
