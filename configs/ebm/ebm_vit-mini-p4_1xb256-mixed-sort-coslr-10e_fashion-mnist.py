# As ebm_vit-mini-p4_1xb256-mixed-coslr-10e_fashion-mnist.py, with patch sorting as a fourth
# task of the mix (the ICLR version's "patch sorting": half of the 4-px cells, the ViT's
# patches, moved among themselves; PatchSortingCorruption), one drawn uniformly per image.
# The selection run that decides whether sorting earns its place: docs/corruptions.md.
_base_ = './ebm_vit-mini-p4_1xb256-mixed-coslr-10e_fashion-mnist.py'

corruption = dict(
    type='MixedCorruption',
    corruptions=[
        *_base_.corruption.corruptions,
        dict(type='PatchSortingCorruption', cell_size=4, shuffle_ratio=0.5, **_base_.img_norm),
    ],
)
train_dataloader = dict(
    dataset=dict(pipeline=[*_base_.augment_pipeline, corruption, _base_.pack_inputs])
)
