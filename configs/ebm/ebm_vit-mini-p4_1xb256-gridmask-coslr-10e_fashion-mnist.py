# Energy-based pretraining on Fashion-MNIST (docs/results_fashion_mnist.md): a 4-layer ViT on 4-px
# patches of the 60,000 training images, labels unused; gridded masking with cells of one
# patch, half of them masked; alpha set on the first batch for a first step of RMS 0.03.
#   python tools/train.py configs/ebm/ebm_vit-mini-p4_1xb256-gridmask-coslr-10e_fashion-mnist.py
# Other corruptions: the *-randmask-*, *-sr2-*, *-denoise-* and *-mixed-* files beside this.
_base_ = [
    '../_base_/models/ebm_vit-mini-p4_fashion-mnist.py',
    '../_base_/datasets/fashion-mnist_bs256_pretrain.py',
    '../_base_/schedules/fashion-mnist_adamw_coslr_10e.py',
]

corruption = dict(type='GridMaskCorruption', cell_size=4, mask_ratio=0.5, **_base_.img_norm)
train_dataloader = dict(
    dataset=dict(pipeline=[*_base_.augment_pipeline, corruption, _base_.pack_inputs])
)
custom_hooks = [dict(type='InitialStepSizeHook', target_rms=0.03)]
