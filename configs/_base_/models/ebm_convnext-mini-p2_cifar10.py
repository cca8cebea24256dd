# The CIFAR-10 study's ConvNet (issue 31, docs/convnet.md): a ConvNeXt of two stages, 1 block
# of 64 channels at 16 x 16 and 4 blocks of 128 at 8 x 8, after a 2-px patchify stem; its
# output, like the ViT's (ebm_vit-mini-p4_cifar10.py), is 128 wide on an 8 x 8 grid of 4-px
# cells, globally averaged through the final LayerNorm `norm1` ([B, 128]). Sized so that an
# energy step costs about the ViT's (batch 64, one thread: 1.9 s vs 1.8 s). LayerNorm, not
# BatchNorm: every image gets its own dE/dx, and the compiled step would accept it. The same
# dense architecture is SparK's encoder (configs/spark/) and every fine-tune's backbone
# (configs/benchmarks/mmpretrain/convnext-mini-p2_*), so both pretrainings transfer.
_base_ = './ebm.py'

# Initialization as ConvNeXt-T's energy model (ebm_convnext-tiny.py says why): masked cells
# are all-zero vectors, so conv layers keep PyTorch's initialization (random biases); linear
# (pointwise) layers and norms as mmpretrain initializes them.
convnext_init = [
    dict(type='TruncNormal', layer=['Linear'], std=0.02, bias=0.0),
    dict(type='Constant', layer=['LayerNorm'], val=1.0, bias=0.0),
]

convnext_mini_p2_cifar10 = dict(
    type='ConvNeXt',
    arch=dict(depths=[1, 4], channels=[64, 128]),
    in_channels=3,
    stem_patch_size=2,
    out_indices=1,  # the last of the two stages (ConvNeXt's default -1 assumes four)
    drop_path_rate=0.0,
    with_cp=False,  # reentrant checkpointing cannot serve the double backward
    init_cfg=convnext_init,
)
# eager double backward, as the ViT of the study: on CPUs the compiled step is no faster
model = dict(
    backbone=convnext_mini_p2_cifar10,
    head=dict(in_channels=128, pool_type='none'),
    grad_mode='exact',
)
