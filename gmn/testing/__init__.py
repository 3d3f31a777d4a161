"""Small, seeded networks for tests and benchmarks (as ``torch_geometric.testing`` for PyG).

May import: gmn.models.

Owns the reference architectures every test and benchmark converts: MLPs, SIRENs, CNNs with
BatchNorm, ResNets, residual MLPs and a transformer block, each built from ``seed`` and
``dtype`` with randomised norm statistics.
"""

from gmn.testing.architectures import (
    FEED_FORWARD_BUILDERS,
    BasicBlock,
    ResidualMLP,
    SmallCNN,
    SmallResNet,
    TransformerBlock,
    example_input,
    make_cnn,
    make_mlp,
    make_residual_mlp,
    make_resnet,
    make_siren,
    make_transformer,
    randomise_norm_stats,
)

__all__ = [
    "FEED_FORWARD_BUILDERS",
    "BasicBlock",
    "ResidualMLP",
    "SmallCNN",
    "SmallResNet",
    "TransformerBlock",
    "example_input",
    "make_cnn",
    "make_mlp",
    "make_residual_mlp",
    "make_resnet",
    "make_siren",
    "make_transformer",
    "randomise_norm_stats",
]
