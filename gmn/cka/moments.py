"""Sample sums from which exact linear CKA follows, and their change of origin.

For two sides ``u, v`` (features ``[n, d_u]``, ``[n, d_v]``, rows ``u_i``, ``v_i``) with
squared row norms ``a_i = ‖u_i‖²``, ``b_i = ‖v_i‖²``, the debiased and biased linear
HSIC need only sums over samples (see ``hsic.linear_hsic``). The sums are kept for
the pairs (x, y), (x, x) and (y, y) in float64, measured from a reference origin
close to the mean so that large feature means do not cancel catastrophically;
:func:`translate` moves them to another origin exactly.

Keys: ``s_u = Σ u_i`` ``[d_u]``, ``a_u = Σ a_i``; per pair ``p = uv``:
``S_p = Σ u_i v_iᵀ`` ``[d_u, d_v]``, ``aa_p = Σ a_i b_i``, ``ua_p = Σ u_i b_i`` ``[d_u]``,
``va_p = Σ v_i a_i`` ``[d_v]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .products import column_sums, inner_products, row_sq_norms

PAIRS = {"xy": ("x", "y"), "xx": ("x", "x"), "yy": ("y", "y")}


def batch_sums(sides: dict[str, Tensor]) -> dict[str, Tensor]:
    """The sums of one batch; ``sides`` maps ``"x"``/``"y"`` to features ``[b, d]``."""
    sq_norms = {u: row_sq_norms(f) for u, f in sides.items()}
    sums = {}
    for u, features in sides.items():
        sums[f"s_{u}"] = column_sums(features)
        sums[f"a_{u}"] = sq_norms[u].sum()
    for pair, (u, v) in PAIRS.items():
        fu, fv = sides[u], sides[v]
        sums[f"S_{pair}"] = inner_products(fu, fv)
        sums[f"aa_{pair}"] = (sq_norms[u] * sq_norms[v]).sum()
        sums[f"ua_{pair}"] = inner_products(fu, sq_norms[v].to(fu.dtype)[:, None])[:, 0]
        sums[f"va_{pair}"] = inner_products(fv, sq_norms[u].to(fv.dtype)[:, None])[:, 0]
    return sums


def translate(sums: dict[str, Tensor], n: int, delta: dict[str, Tensor]) -> dict[str, Tensor]:
    """The same sums for features ``u - delta[u]`` (float64 ``[d_u]`` per side)."""
    out = {}
    for pair, (u, v) in PAIRS.items():
        du, dv = delta[u], delta[v]
        su, sv, au, av = sums[f"s_{u}"], sums[f"s_{v}"], sums[f"a_{u}"], sums[f"a_{v}"]
        cross, ua, va = sums[f"S_{pair}"], sums[f"ua_{pair}"], sums[f"va_{pair}"]
        du2, dv2 = du @ du, dv @ dv
        out[f"S_{pair}"] = (
            cross - torch.outer(du, sv) - torch.outer(su, dv) + n * torch.outer(du, dv)
        )
        out[f"aa_{pair}"] = (
            sums[f"aa_{pair}"]
            - 2 * (du @ ua + dv @ va)
            + dv2 * au
            + du2 * av
            + 4 * (du @ cross @ dv)
            - 2 * dv2 * (du @ su)
            - 2 * du2 * (dv @ sv)
            + n * du2 * dv2
        )
        out[f"ua_{pair}"] = (
            ua - 2 * cross @ dv + dv2 * su - du * av + 2 * du * (dv @ sv) - n * dv2 * du
        )
        out[f"va_{pair}"] = (
            va - 2 * cross.T @ du + du2 * sv - dv * au + 2 * dv * (du @ su) - n * du2 * dv
        )
    for u in ("x", "y"):
        out[f"s_{u}"] = sums[f"s_{u}"] - n * delta[u]
        out[f"a_{u}"] = sums[f"a_{u}"] - 2 * (delta[u] @ sums[f"s_{u}"]) + n * (delta[u] @ delta[u])
    return out
