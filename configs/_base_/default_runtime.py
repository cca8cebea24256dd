# Runtime shared by pretraining, fine-tuning and linear probing.
default_scope = 'mmpretrain'
# registers EnergyRestorationAlgorithm, EnergyHead, the corruptions and our hooks
custom_imports = dict(imports=['mmpretrain_ebm'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # prediction pictures of classification validation; off by default as in mmpretrain
    visualization=dict(type='VisualizationHook', enable=False),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

# Append dict(type='TensorboardVisBackend') to visualizer.vis_backends to also write
# TensorBoard event files (images, losses, alpha, restoration PSNR; needs tensorboard).
visualizer = dict(type='UniversalVisualizer', vis_backends=[dict(type='LocalVisBackend')])

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, diff_rank_seed=True)
