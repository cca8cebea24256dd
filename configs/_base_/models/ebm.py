# The energy-based pretraining algorithm without its backbone: E(x) = head(pool(backbone(x)))
# with a bias-free linear head, N = 2 restoration steps x~n = SG(x~n-1) - alpha * dE/dx and
# Listing 1's SmoothL1(beta=1) loss against the clean image (App. A.1, A.4).
# Backbone files inherit this one and add `backbone` and `head.in_channels`.
model = dict(
    type='EnergyRestorationAlgorithm',
    num_steps=2,
    # step size, learned with the model (App. A.1); the pretraining data base's
    # InitialStepSizeHook replaces this value on the first batch
    alpha=1.0,
    learnable_alpha=True,
    loss=dict(type='SmoothL1Loss', beta=1.0),
    # the exact gradients of Eq. 4 from one torch.compile-d graph per input shape, compiled
    # on the first batch (docs/performance.md); 'exact' runs the same by eager double backward
    grad_mode='compiled',
    head=dict(type='EnergyHead'),
)
