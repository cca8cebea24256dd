# Fine-tune all weights of the CIFAR-10 study's ViT (4 layers, 128-d, 4-px patches) on 100
# labelled training images per class (1,000, drawn by seed 0), with the Fashion-MNIST
# study's recipe (docs/fashion_mnist/finetune_recipe.md; not yet re-chosen on CIFAR-10's
# validation split): AdamW, lr 3e-3 per 256 images, no layer-wise lr decay, drop path 0.1,
# label smoothing 0.1, 5 warm-up epochs, cosine, 100 epochs; validation on 5,000 held-out
# training images, test on the 10,000 test images. Initialized from a pretraining checkpoint
# (energy or MAE; its `backbone.` weights; MAE's final norm ln1 is left out, ln2 starts anew):
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/<pretrain>/epoch_10.pth
# from scratch: --cfg-options model.backbone.init_cfg=None (as it is, the config names no
# checkpoint, and mmengine stops rather than train from scratch unasked). Other label counts:
# train_dataloader.dataset.num_per_class.
_base_ = [
    '../../_base_/datasets/cifar10_bs256_finetune.py',
    '../../_base_/schedules/vit-mini_finetune_adamw_coslr_100e.py',
    '../../_base_/default_runtime.py',
]

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch=dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512),
        img_size=32,
        patch_size=4,
        in_channels=3,
        drop_path_rate=0.1,
        out_type='avg_featmap',
        final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.'),
    ),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=128,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)],
    ),
)
train_dataloader = dict(batch_size=128)

# Inference on given image files (mmpretrain_ebm.apis: inference_model, ClassifierInferencer,
# FeatureExtractor): the short edge resized to 32 px and center-cropped, as the pretraining
# configs' test pipeline.
inference_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=32, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=32),
    dict(type='PackInputs'),
]

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=_base_.max_epochs, max_keep_ckpts=1),
)
