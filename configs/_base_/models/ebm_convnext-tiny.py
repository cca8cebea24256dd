# ConvNeXt-T (Table B). Its default output is already pooled and normalized ([B, 768]).
# with_cp must stay off: reentrant checkpointing breaks the double backward.
_base_ = './ebm.py'

# mmpretrain initializes every ConvNeXt conv bias to 0. A masked cell is exactly 0 after
# normalization, so the stem, its LayerNorm and every block then see all-zero channel vectors,
# and each LayerNorm scales the input gradient by 1/sqrt(eps) = 1000: dE/dx reaches ~3e6 per
# pixel on masked images (vs ~1e-3 on clean ones) and the first step throws them away. Conv
# layers therefore keep PyTorch's default initialization (uniform random bias); the linear
# (pointwise) layers and norms are initialized as mmpretrain does.
convnext_init = [
    dict(type='TruncNormal', layer=['Linear'], std=0.02, bias=0.0),
    dict(type='Constant', layer=['LayerNorm'], val=1.0, bias=0.0),
]

model = dict(
    backbone=dict(
        type='ConvNeXt', arch='tiny', drop_path_rate=0.0, with_cp=False, init_cfg=convnext_init
    ),
    head=dict(in_channels=768, pool_type='none'),
)
