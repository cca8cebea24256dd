# Energy-based pretraining on CIFAR-10 (issue 30's study): the 4-layer, 128-d ViT on 4-px
# patches of the 50,000 training images, labels unused; gridded masking with cells of one
# patch, half of them masked; alpha set on the first batch for a first step of RMS 0.03; the
# Fashion-MNIST study's schedule (AdamW, lr 1e-3 per 256 images, cosine, 10 epochs); online
# k-NN top-1 on a labelled subset every epoch (knn_history.json, the json log).
#   python tools/train.py configs/ebm/ebm_vit-mini-p4_1xb256-gridmask-coslr-10e_cifar10.py
# Other corruptions: the *-randmask-large-, *-sr4-, *-denoise-, *-colorize- and *-mixed-
# files beside this one. Data: configs/_base_/datasets/cifar10_source.py.
_base_ = [
    '../_base_/models/ebm_vit-mini-p4_cifar10.py',
    '../_base_/datasets/cifar10_bs256_pretrain.py',
    '../_base_/schedules/fashion-mnist_adamw_coslr_10e.py',
]

corruption = dict(type='GridMaskCorruption', cell_size=4, mask_ratio=0.5, **_base_.corruption_norm)
train_dataloader = dict(
    dataset=dict(pipeline=[*_base_.augment_pipeline, corruption, _base_.pack_inputs])
)
custom_hooks = [dict(type='InitialStepSizeHook', target_rms=0.03), _base_.knn_hook]
