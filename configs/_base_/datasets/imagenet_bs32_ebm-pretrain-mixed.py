# Pretraining data with the paper's mixed pretext task (Sec. 3.2, Table 3): each image gets
# one corruption drawn uniformly from masking, super-resolution, denoising and colorization.
# The paper does not say which masking and which SR factor; we take the best of each in
# Tables 1-2: Random large (79.7) and SR 16x (79.6).
_base_ = './imagenet_bs32_ebm-pretrain.py'

corruption = dict(
    type='MixedCorruption',
    corruptions=[
        dict(type='RandomBoxMaskCorruption', preset='large', **_base_.img_norm),
        dict(type='SuperResolutionCorruption', scale=16, **_base_.img_norm),
        dict(type='DenoisingCorruption', **_base_.img_norm),
        dict(type='ColorizationCorruption', **_base_.img_norm),
    ],
)
train_dataloader = dict(
    dataset=dict(pipeline=[*_base_.augment_pipeline, corruption, _base_.pack_inputs])
)
