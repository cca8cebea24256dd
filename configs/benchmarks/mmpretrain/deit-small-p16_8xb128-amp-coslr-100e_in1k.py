# Fine-tune an energy-pretrained ViT-S (DeiT-S) on ImageNet-1k for 100 epochs (Tables 1-2):
# drop path 0.1, label smoothing 0.1, Mixup 0.8, CutMix 1.0, layer decay 0.75 (Table A).
# Give the pretraining checkpoint (a runner checkpoint; the `backbone.` weights are taken):
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/<pretrain>/epoch_100.pth
# The backbone is built exactly as in pretraining (out_type='avg_featmap', final_norm=False),
# so every pretrained backbone parameter is loaded.
_base_ = [
    '../../_base_/datasets/imagenet_bs128_finetune.py',
    '../../_base_/schedules/finetune_adamw_layer-decay_amp_coslr_100e.py',
    '../../_base_/default_runtime.py',
]

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch='deit-small',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        out_type='avg_featmap',
        final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.'),
    ),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=384,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)],
    ),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)
