# UperNet on ADE20K with the Swin-T (patch 4, window 7) of our energy pretraining. Recipe of
# mmseg's Swin UperNet: AdamW lr 6e-5, weight decay 0.01 (none for norms and relative
# position tables), drop path 0.3, 8 GPUs x 2 images, 160k iterations, whole-image testing.
_base_ = [
    '_base_/models/upernet.py',
    '_base_/datasets/ade20k_512x512.py',
    '_base_/default_runtime.py',
    '_base_/schedules/schedule_160k.py',
]

# mmpretrain's SwinTransformer, the module our pretraining trains. The dense backbone
# normalizes the output of all four stages (norm0..norm3); pretraining had norm3 only, so the
# converter writes norm0..norm2 at their initialization. pad_small_map pads feature maps
# smaller than a window instead of failing, as dense-prediction Swins do.
model = dict(
    backbone=dict(
        type='mmpretrain.SwinTransformer',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.3,
        pad_small_map=True,
        init_cfg=dict(type='Pretrained', checkpoint='pretrain/ebm_swin-tiny-p4-w7_mmseg.pth'),
    ),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384),
    test_cfg=dict(mode='whole'),
)

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.0),
            'relative_position_bias_table': dict(decay_mult=0.0),
            'norm': dict(decay_mult=0.0),
        }
    ),
)
