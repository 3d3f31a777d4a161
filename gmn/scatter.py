"""The package's single scatter entry point.

May import: nothing of gmn.

Every aggregation in gmn goes through :func:`scatter`. It uses torch-scatter when
that package imports (``pip install gmn[scatter]``) and PyTorch Geometric's native
scatter (``torch.Tensor.scatter_reduce_``) otherwise; both give the same numbers.
"""

from __future__ import annotations

from torch import Tensor

try:  # optional extra: no PyPI wheels, slow to compile (README)
    import torch_scatter as _torch_scatter
except Exception:  # noqa: BLE001 - any import failure means "not available"
    _torch_scatter = None

from torch_geometric.utils import scatter as _pyg_scatter

REDUCTIONS = ("sum", "mean", "max", "min")
BACKEND = "torch_scatter" if _torch_scatter is not None else "native"


def scatter(src: Tensor, index: Tensor, dim_size: int, reduce: str = "sum", dim: int = 0) -> Tensor:
    """Reduce rows of ``src`` that share an ``index`` value.

    Args:
        src: [E, ...] values to reduce.
        index: [E] long, target row of each value, in ``[0, dim_size)``.
        dim_size: number of output rows (rows with no value are 0).
        reduce: one of ``"sum"``, ``"mean"``, ``"max"``, ``"min"``.
        dim: the dimension of ``src`` that ``index`` addresses.

    Returns:
        [dim_size, ...] reduced values.
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    if _torch_scatter is not None and src.device.type != "mps":
        return _torch_scatter.scatter(src, index, dim=dim, dim_size=dim_size, reduce=reduce)
    return _pyg_scatter(src, index, dim=dim, dim_size=dim_size, reduce=reduce)
