# As ebm_vit-mini-p4_1xb256-gridmask-coslr-10e_fashion-mnist.py, with the
# mixed task of the paper (Sec. 3.2) for grey images: random large boxes, 4x
# super-resolution or denoising, one drawn uniformly per image (colorization has nothing to
# restore in grey images and is left out).
_base_ = './ebm_vit-mini-p4_1xb256-gridmask-coslr-10e_fashion-mnist.py'

corruption = dict(
    type='MixedCorruption',
    corruptions=[
        dict(type='RandomBoxMaskCorruption', preset='large', **_base_.img_norm),
        dict(type='SuperResolutionCorruption', scale=4, **_base_.img_norm),
        dict(type='DenoisingCorruption', **_base_.img_norm),
    ],
)
train_dataloader = dict(
    dataset=dict(pipeline=[*_base_.augment_pipeline, corruption, _base_.pack_inputs])
)
