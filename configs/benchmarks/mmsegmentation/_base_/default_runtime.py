# Runtime shared by our mmseg configs. mmseg's registries come first; mmpretrain's backbones are
# named through their scope prefix (``mmpretrain.VisionTransformer``). Importing mmpretrain_ebm
# allow-lists the types of runner checkpoints, so that ``--resume`` works under torch's
# ``weights_only=True`` loading.
default_scope = 'mmseg'
custom_imports = dict(imports=['mmpretrain.models', 'mmpretrain_ebm'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')], name='visualizer'
)
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
