# Energy-based pretraining on CIFAR-10 of the study's ConvNet (issue 31, docs/convnet.md): a
# two-stage ConvNeXt, 128 wide on an 8 x 8 grid (configs/_base_/models/ebm_convnext-mini-p2_
# cifar10.py), with everything else as the ViT's ebm_vit-mini-p4_1xb256-mixed-coslr-10e_
# cifar10.py: the paper's mix at 32 px (random large boxes, 4x super-resolution, denoising or
# colorization, one drawn per image), the same data, schedule (AdamW, lr 1e-3 per 256
# images, cosine, 10 epochs), alpha set on the first batch for a first step of RMS 0.03, and
# the online k-NN line; grad_mode='exact'. The baseline on the same backbone: SparK,
# configs/spark/spark_sparse-convnext-mini-p2_1xb256-coslr-10e_cifar10.py.
#   python tools/train.py configs/ebm/ebm_convnext-mini-p2_1xb256-mixed-coslr-10e_cifar10.py
_base_ = [
    '../_base_/models/ebm_convnext-mini-p2_cifar10.py',
    '../_base_/datasets/cifar10_bs256_pretrain.py',
    '../_base_/schedules/fashion-mnist_adamw_coslr_10e.py',
]

train_dataloader = dict(
    dataset=dict(pipeline=[*_base_.augment_pipeline, _base_.mixed_corruption, _base_.pack_inputs])
)
custom_hooks = [dict(type='InitialStepSizeHook', target_rms=0.03), _base_.knn_hook]
