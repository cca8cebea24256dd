# Energy-based pretraining of ViT-S (DeiT-S) on your own folder of images, at your resolution.
# Copy this file (outside configs/ebm/, make the _base_ path absolute), set the variables below:
#   python tools/train.py my_config.py                  # 1 GPU (or CPU)
#   tools/dist_train.sh my_config.py 8                  # 8 GPUs
# (mmengine resolves the variables when the file is read: --cfg-options img_size=... would not
# reach the places that use them; train_dataloader.dataset.data_root=... does work.)
# `data_root` is searched recursively for images (mmpretrain's CustomDataset, with_label=False:
# .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp); subfolders are not classes. Unreadable
# files cost a warning and are replaced by another sample (LoadImageFromFileOrSkip); more than
# 10 % failed loads stop the run. The step size alpha is set on the first batch so that the
# first restoration step moves the normalized pixels by RMS 0.03 (InitialStepSizeHook, from the
# pretraining data base), which fits any resolution and backbone. lr: 1e-4 per 256 images
# (auto_scale_lr), 1.25e-5 at 1x32.
_base_ = ['./ebm_deit-small-p16_8xb32-mixed-amp-coslr-200e_in1k.py']

data_root = 'data/my_images'
img_size = 224  # training crop side (px), a multiple of the 16-px patch
batch_size = 32  # per GPU
sr_scale = 16  # super-resolution factor of the mix; keep img_size / sr_scale >= 8 or so

model = dict(backbone=dict(img_size=img_size))
corruption = dict(
    _base_.corruption,
    corruptions=[
        *_base_.corruption.corruptions[:1],
        dict(_base_.corruption.corruptions[1], scale=sr_scale),
        *_base_.corruption.corruptions[2:],
    ],
)
train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        with_label=False,
        pipeline=[
            _base_.augment_pipeline[0],  # LoadImageFromFileOrSkip
            dict(_base_.augment_pipeline[1], scale=img_size),  # RandomResizedCrop
            *_base_.augment_pipeline[2:],
            corruption,
            _base_.pack_inputs,
        ],
    ),
)
# inference (docs/api.md): the folder's images at the training crop
test_pipeline = [
    _base_.test_pipeline[0],  # LoadImageFromFile
    dict(_base_.test_pipeline[1], scale=img_size),  # ResizeEdge
    dict(_base_.test_pipeline[2], crop_size=img_size),  # CenterCrop
    *_base_.test_pipeline[3:],
]
test_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        with_label=False,
        pipeline=test_pipeline,
    ),
)
