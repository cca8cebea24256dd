# Linear probe of an energy-pretrained ViT-S (MAE's protocol; the paper reports none):
# frozen backbone, the pooled features the energy was computed from, a BatchNorm without
# affine parameters and a linear classifier.
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/<pretrain>/epoch_100.pth
_base_ = [
    '../../_base_/datasets/imagenet_bs2048_linear-probe.py',
    '../../_base_/schedules/linear-probe_lars_coslr_90e.py',
    '../../_base_/default_runtime.py',
]

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch='deit-small',
        img_size=224,
        patch_size=16,
        frozen_stages=12,
        out_type='avg_featmap',
        final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.'),
    ),
    neck=dict(type='ClsBatchNormNeck', input_features=384),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=384,
        loss=dict(type='CrossEntropyLoss'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)],
    ),
)
