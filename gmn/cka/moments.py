"""Sample sums from which exact linear CKA follows, and their change of origin.

For two sides ``u, v`` (features ``[n, d_u]``, ``[n, d_v]``, rows ``u_i``, ``v_i``) with
squared row norms ``a_i = ‖u_i‖²``, ``b_i = ‖v_i‖²``, the debiased and biased linear
HSIC need only sums over samples (see ``hsic.linear_hsic``). The sums are kept in
float64, measured from a reference origin close to the mean so that large feature means
do not cancel catastrophically; :func:`translate_pair` and :func:`translate_side` move
them to another origin exactly.

A side (one layer) keeps ``s = Σ u_i`` ``[d_u]``, ``a = Σ a_i`` and its own pair sums
(with itself). A pair ``(u, v)`` keeps ``S = Σ u_i v_iᵀ`` ``[d_u, d_v]``,
``aa = Σ a_i b_i``, ``ua = Σ u_i b_i`` ``[d_u]`` and ``va = Σ v_i a_i`` ``[d_v]``; a side's
pair with itself stores no ``va`` (it equals ``ua``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .products import column_sums, inner_products, row_sq_norms

Sums = dict[str, Tensor]


def side_sums(features: Tensor) -> tuple[Sums, Tensor]:
    """One batch of one layer, ``features`` ``[b, d]`` (already shifted to the origin):
    its side sums and its squared row norms ``[b]`` (float64)."""
    sq_norms = row_sq_norms(features)
    sums = {
        "s": column_sums(features),
        "a": sq_norms.sum(),
        "S": inner_products(features, features),
        "aa": sq_norms.square().sum(),
        "ua": inner_products(features, sq_norms.to(features.dtype)[:, None])[:, 0],
    }
    return sums, sq_norms


def pair_sums(fu: Tensor, fv: Tensor, sq_u: Tensor, sq_v: Tensor) -> Sums:
    """One batch of the pair ``(u, v)``: features ``[b, d_u]``, ``[b, d_v]`` and their
    squared row norms ``[b]``."""
    return {
        "S": inner_products(fu, fv),
        "aa": (sq_u * sq_v).sum(),
        "ua": inner_products(fu, sq_v.to(fu.dtype)[:, None])[:, 0],
        "va": inner_products(fv, sq_u.to(fv.dtype)[:, None])[:, 0],
    }


def add(total: Sums | None, more: Sums) -> Sums:
    """Key-wise sum (``total`` None: a copy of ``more``)."""
    return dict(more) if total is None else {k: v + more[k] for k, v in total.items()}


def translate_pair(pair: Sums, u: Sums, v: Sums, n: int, du: Tensor, dv: Tensor) -> Sums:
    """The pair sums for features ``u - du``, ``v - dv`` (float64 ``[d_u]``, ``[d_v]``);
    ``u``, ``v``: the two sides' sums (``s``, ``a``) before the move."""
    su, sv, au, av = u["s"], v["s"], u["a"], v["a"]
    cross, ua = pair["S"], pair["ua"]
    va = pair.get("va", ua)
    du2, dv2 = du @ du, dv @ dv
    moved = {
        "S": cross - torch.outer(du, sv) - torch.outer(su, dv) + n * torch.outer(du, dv),
        "aa": pair["aa"]
        - 2 * (du @ ua + dv @ va)
        + dv2 * au
        + du2 * av
        + 4 * (du @ cross @ dv)
        - 2 * dv2 * (du @ su)
        - 2 * du2 * (dv @ sv)
        + n * du2 * dv2,
        "ua": ua - 2 * cross @ dv + dv2 * su - du * av + 2 * du * (dv @ sv) - n * dv2 * du,
    }
    if "va" in pair:
        moved["va"] = va - 2 * cross.T @ du + du2 * sv - dv * au + 2 * dv * (du @ su) - n * du2 * dv
    return moved


def translate_side(side: Sums, n: int, delta: Tensor) -> Sums:
    """A side's sums for features ``u - delta`` (float64 ``[d_u]``)."""
    moved = translate_pair(side, side, side, n, delta, delta)
    moved["s"] = side["s"] - n * delta
    moved["a"] = side["a"] - 2 * (delta @ side["s"]) + n * (delta @ delta)
    return moved
