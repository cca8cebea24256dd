# Table 3, Ours Mixed, ViT-B/16: 200 epochs of the mixed pretext task, 8 GPUs x 256 images.
# The lr (1e-4 per 256 images) is scaled to the 2048-image batch by auto_scale_lr; a smaller
# per-GPU batch (train_dataloader.batch_size=...) rescales it the same way.
_base_ = [
    '../_base_/models/ebm_vit-base-p16.py',
    '../_base_/datasets/imagenet_bs32_ebm-pretrain-mixed.py',
    '../_base_/schedules/ebm-pretrain_adamw_amp_coslr_200e.py',
    '../_base_/default_runtime.py',
]

train_dataloader = dict(batch_size=256)
