# UperNet on ADE20K with the ConvNeXt-T of our energy pretraining. Recipe of mmseg's ConvNeXt
# UperNet: AdamW lr 1e-4, weight decay 0.05, stage-wise lr decay 0.9, drop path 0.4, AMP,
# 8 GPUs x 2 images, 160k iterations.
_base_ = [
    '_base_/models/upernet.py',
    '_base_/datasets/ade20k_512x512.py',
    '_base_/default_runtime.py',
    '_base_/schedules/schedule_160k.py',
]

# mmpretrain's ConvNeXt, the module our pretraining trains. The dense backbone normalizes
# the output of all four stages (norm0..norm3); pretraining had norm3 only, so the converter
# writes norm0..norm2 at their initialization.
model = dict(
    backbone=dict(
        type='mmpretrain.ConvNeXt',
        arch='tiny',
        out_indices=[0, 1, 2, 3],
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        gap_before_final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint='pretrain/ebm_convnext-tiny_mmseg.pth'),
    ),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384),
)

# mmseg's constructor recognizes mmpretrain's ConvNeXt by name and parses its parameter names.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='bfloat16',  # bf16 autocast; 'float16' for GPUs without bf16 (docs/algorithm.md)
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='LearningRateDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise', num_layers=6),
)
