"""Small, seeded networks for tests and benchmarks (as ``torch_geometric.testing`` for PyG).

May import: gmn.models.

Owns the reference architectures every test and benchmark converts: MLPs, SIRENs, CNNs with
BatchNorm, ResNets, residual MLPs and a transformer block, each built from ``seed`` and
``dtype`` with randomised norm statistics.
"""

from gmn.testing.architectures import *  # noqa: F403 (its __all__)
from gmn.testing.architectures import __all__  # noqa: F401
