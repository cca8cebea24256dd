# As convnext-mini-p2_1xb128-coslr-100e_cifar10-k100.py, with every label: the 45,000
# training images not held out for validation, 10 epochs, batch 256, 1 warm-up epoch (as the
# ViT's vit-mini-p4_1xb256-coslr-10e_cifar10-full.py).
_base_ = './convnext-mini-p2_1xb128-coslr-100e_cifar10-k100.py'

train_dataloader = dict(batch_size=256, dataset=dict(num_per_class=None))
max_epochs = 10
param_scheduler = [
    dict(_base_.param_scheduler[0], end=1),
    dict(_base_.param_scheduler[1], begin=1, end=max_epochs),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs))
