# ImageNet-1k for linear probing (MAE's protocol; the paper reports none): crop and flip
# only for training, resize 256 and center crop 224 for evaluation.
_base_ = './imagenet_bs128_finetune.py'

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=2048, dataset=dict(pipeline=train_pipeline))
