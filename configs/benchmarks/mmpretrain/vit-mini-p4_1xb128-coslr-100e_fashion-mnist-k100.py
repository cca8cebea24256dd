# Fine-tune all weights of the study's ViT (4 layers, 96-d, 4-px patches) on 100 labelled
# Fashion-MNIST images per class (1,000, drawn by seed 0; docs/results_fashion_mnist.md):
# AdamW, lr 3e-3 per 256 images, no layer-wise lr decay (both chosen on validation:
# docs/fashion_mnist/finetune_recipe.md), drop path 0.1, label smoothing 0.1, 5 warm-up
# epochs, cosine; validation on 5,000 held-out training images, test on the
# 10,000 test images. Initialized from a pretraining checkpoint (energy or MAE; its
# `backbone.` weights):
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/<pretrain>/epoch_10.pth
# From scratch: --cfg-options model.backbone.init_cfg=None (as written, the config names no
# checkpoint and mmengine stops). Other label counts: train_dataloader.dataset.num_per_class.
_base_ = [
    '../../_base_/datasets/fashion-mnist_bs256_finetune.py',
    '../../_base_/schedules/vit-mini_finetune_adamw_coslr_100e.py',
    '../../_base_/default_runtime.py',
]

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch=dict(embed_dims=96, num_layers=4, num_heads=3, feedforward_channels=384),
        img_size=28,
        patch_size=4,
        in_channels=1,
        drop_path_rate=0.1,
        out_type='avg_featmap',
        final_norm=False,
        # type='Pretrained', checkpoint=..., prefix='backbone.' to start from pretraining
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.'),
    ),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=96,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)],
    ),
)
train_dataloader = dict(batch_size=128)

# Inference on given images (mmpretrain_ebm.apis: inference_model, ClassifierInferencer,
# FeatureExtractor): read as grey, the short edge resized to 28 px and center-cropped, as the
# pretraining configs' test pipeline. The test dataloader's pipeline only packs: its
# FashionMNIST dataset gives 28 x 28 grey arrays, not files.
inference_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='ResizeEdge', scale=28, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=28),
    dict(type='PackInputs'),
]

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=_base_.max_epochs, max_keep_ckpts=1),
)
