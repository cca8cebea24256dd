# Fine-tune all weights of the CIFAR-10 study's ConvNet (issue 31, docs/convnet.md: a
# two-stage ConvNeXt, 2-px stem, 1 block of 64 channels at 16 x 16 and 4 of 128 at 8 x 8,
# pooled through its final LayerNorm `norm1`) on 100 labelled training images per class,
# with everything else as the ViT's vit-mini-p4_1xb128-coslr-100e_cifar10-k100.py (the same
# splits, recipe, drop path 0.1, head, validation and test). Initialized from either
# pretraining's `backbone.` weights: energy (configs/ebm/ebm_convnext-mini-p2_*: every key,
# `norm1` included) or SparK (configs/spark/: every key but `norm1`, which SparK's encoder
# does not have and which starts anew, as MAE's ln2 does for the ViT):
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/<pretrain>/epoch_10.pth
# from scratch: --cfg-options model.backbone.init_cfg=None (PyTorch's initialization).
_base_ = './vit-mini-p4_1xb128-coslr-100e_cifar10-k100.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ConvNeXt',
        arch=dict(depths=[1, 4], channels=[64, 128]),
        in_channels=3,
        stem_patch_size=2,
        out_indices=1,
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.'),
    )
)
