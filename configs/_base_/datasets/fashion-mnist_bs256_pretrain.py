# Fashion-MNIST (28 x 28 grey, 60,000 training images) for self-supervised pretraining: the
# training images without their labels, each a random 50-100 % crop resized back to 28 px and
# flipped. Shared by the energy and the MAE pretraining configs, so both see the same data.
# Data: python tools/dataset_converters/prepare_fashion_mnist.py (docs/results_fashion_mnist.md).
data_root = 'data/fashion_mnist'
img_size = 28

# grey statistics of the training images (0..255): masked pixels take the mean, 0 after
# normalization
img_norm = dict(mean=[72.94], std=[90.02])
data_preprocessor = dict(type='SelfSupDataPreprocessor', **img_norm)

augment_pipeline = [
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

train_dataloader = dict(
    batch_size=256,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='FashionMNIST',
        data_root=data_root,
        test_mode=False,
        download=False,
        pipeline=[*augment_pipeline, pack_inputs],
    ),
)

# Inference on given images (docs/api.md): read as grey, the short edge resized to
# 28 px and center-cropped, normalized by the data preprocessor as in pretraining. The test
# dataloader only carries this pipeline (tools/test.py refuses pretraining configs).
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
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
        type='FashionMNIST',
        data_root=data_root,
        test_mode=True,
        download=False,
        pipeline=test_pipeline,
    ),
)
test_cfg = dict(type='TestLoop')
test_evaluator = []

# The test images as arrays (no files to load), e.g. for held-out restoration gains
# (tools/analysis/study.py), as the CIFAR-10 configs name theirs
test_set = dict(type='FashionMNIST', data_root=data_root, test_mode=True, download=False)
load_steps = []
