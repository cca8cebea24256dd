# The embedded demo: a few minutes of energy-based pretraining on 2 CPU cores.
#   make demo
# (= python tools/dataset_converters/prepare_demo_data.py data/demo
#    python tools/train.py configs/ebm/ebm_vit-mini-p8_1xb16-mixed-coslr-400i_skimage-64px.py
#           --work-dir work_dirs/demo)
# Data: 96-px crops of scikit-image's bundled photographs, cropped to 64 px. Model: a 4-layer
# ViT with 8-px patches. Corruption: the paper's four tasks mixed, at this size and length
# (grid masking of one-patch cells, 4x super-resolution, denoising with g ~ U(0.5, 1),
# colorization). Ends with work_dirs/demo/iter_400.pth and two
# PNGs of restoration chains (corrupted / step 1 / step 2 / clean, with PSNR), each image
# under each corruption: restoration_train.png (training photographs) and
# restoration_held_out.png (a photograph the training split never sees).
# Not Table A's schedule: 400 iterations, lr 1e-3 after 20 warm-up iterations, cosine decay.
# docs/demo.md ("What the demo shows") lists what it restores and what it cannot at this scale,
# and every setting tried for it ("Demo settings tried").
_base_ = [
    '../_base_/models/ebm_deit-small-p16.py',
    '../_base_/datasets/imagenet_bs32_ebm-pretrain-mixed.py',
    '../_base_/schedules/ebm-pretrain_adamw_amp_coslr_100e.py',
    '../_base_/default_runtime.py',
]

data_root = 'data/demo'
img_size = 64

# a 4-layer, 96-d ViT on 8-px patches, pooled as the DeiT-S of the paper's configs; alpha is
# set on the first batch (InitialStepSizeHook below, as in every pretraining config).
model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True, embed_dims=96, num_layers=4, num_heads=3, feedforward_channels=384
        ),
        img_size=img_size,
        patch_size=8,
    ),
    head=dict(in_channels=96),
    # eager double backward: on 2 CPU cores compiling (about 10-30 s) costs what it saves in
    # 400 iterations, and the first picture (iteration 100) comes sooner without it
    grad_mode='exact',
)

# The mixed task of the ImageNet configs, scaled to what 400 iterations can learn at 64 px
# (docs/demo.md, "Demo settings tried"): grid masking of 8-px cells, one per patch as the
# paper's gridded 16 on 16-px patches, at 50 % in place of random large boxes (+1.3 dB
# held-out against +0.2), 4x super-resolution (16x leaves 4x4 px here), and denoising with
# g ~ U(0.5, 1), whose held-out photographs stay legible (U(0, 1) reaches pure noise; no range
# tried gains in 400 iterations).
corruption = dict(
    _base_.corruption,
    corruptions=[
        dict(type='GridMaskCorruption', cell_size=8, mask_ratio=0.5, **_base_.img_norm),
        dict(_base_.corruption.corruptions[1], scale=4),
        dict(_base_.corruption.corruptions[2], gamma_range=(0.5, 1.0)),
        *_base_.corruption.corruptions[3:],
    ],
)
augment_pipeline = [
    *_base_.augment_pipeline[:1],
    dict(_base_.augment_pipeline[1], scale=img_size),  # RandomResizedCrop
    *_base_.augment_pipeline[2:],
]
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    pin_memory=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        data_prefix='train',
        with_label=False,
        pipeline=[*augment_pipeline, corruption, _base_.pack_inputs],
    ),
)
# inference (docs/api.md): the held-out photographs, at the training crop
test_pipeline = [
    _base_.test_pipeline[0],  # LoadImageFromFile
    dict(_base_.test_pipeline[1], scale=img_size),  # ResizeEdge
    dict(_base_.test_pipeline[2], crop_size=img_size),  # CenterCrop
    *_base_.test_pipeline[3:],
]
test_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    pin_memory=False,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        data_prefix='val',
        with_label=False,
        pipeline=test_pipeline,
    ),
)

# Table A's optimizer without AMP (CPU) and with a fixed, larger lr; iteration-based.
max_iters = 400
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(_base_.optim_wrapper.optimizer, lr=1e-3),
    paramwise_cfg=_base_.optim_wrapper.paramwise_cfg,
)
auto_scale_lr = dict(enable=False)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False, begin=20, end=max_iters),
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
)
log_processor = dict(by_epoch=False)

# Restoration chains every 100 iterations: of held-out photographs (generalization) and of
# training photographs (what the model has fitted), each under every corruption of the mix.
custom_hooks = [
    _base_.custom_hooks[0],  # InitialStepSizeHook
    dict(
        type='RestorationVisualizationHook',
        name='restoration_held_out',
        interval=100,
        num_images=3,
        dataset=dict(
            type='CustomDataset', data_root=data_root, data_prefix='val', with_label=False
        ),
    ),
    dict(
        type='RestorationVisualizationHook',
        name='restoration_train',
        interval=100,
        num_images=3,
        curves=False,
    ),
]
