"""Checking and flattening the representations handed to the CKA estimators."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from .products import column_sums


def as_tensor(x, name: str = "x") -> Tensor:
    """``x`` as a tensor: a tensor as is, a numpy array shared with torch; ``TypeError`` naming
    ``name`` and the type for anything else (lists included: their shape is ambiguous)."""
    if isinstance(x, Tensor):
        return x
    if type(x).__module__ == "numpy" and type(x).__name__ == "ndarray":
        return torch.from_numpy(x)
    raise TypeError(
        f"{name} must be a torch.Tensor or numpy.ndarray of shape [n, ...], got {type(x).__name__}"
    )


def as_samples(x: Tensor, name: str = "x") -> Tensor:
    """Flatten a representation ``[n, ...]`` (tensor or numpy array) to ``[n, d]`` after
    checking it.

    The result is float64 for float64, integer and boolean inputs and float32 for
    other floating inputs (float16, bfloat16): the dtype products are formed in.
    Raises ``TypeError`` for other types and complex values, ``ValueError`` for a
    0-d tensor or an empty one (NaN/Inf are caught by :func:`finite_column_sums`).
    """
    x = as_tensor(x, name)
    if x.is_complex():
        raise TypeError(f"{name} is complex ({x.dtype}); CKA needs real-valued representations")
    if x.dim() == 0:
        raise ValueError(f"{name} is a scalar; CKA needs a tensor of shape [n_samples, ...]")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
    if x.dtype != torch.float64:
        x = x.to(torch.float64 if not x.is_floating_point() else torch.float32)
    return x.reshape(x.shape[0], -1)


def finite_column_sums(x: Tensor, name: str = "x") -> Tensor:
    """Column sums of ``x`` ``[n, d]`` as float64 ``[d]``; ``ValueError`` if x has NaN/Inf.

    Checking the sums costs no extra pass over the data: any NaN or Inf makes them
    non-finite.
    """
    sums = column_sums(x)
    if not torch.isfinite(sums).all():
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            raise ValueError(f"{name} (shape {tuple(x.shape)}) contains {bad} NaN or Inf value(s)")
        sums = x.sum(dim=0, dtype=torch.float64)  # finite values whose float32 block sum overflowed
    return sums


def check_sample_count(n: int, debiased: bool) -> None:
    """Raise if ``n`` samples are too few for the chosen estimator; warn when the biased
    estimator's value is decided by ``n`` alone (n = 2: two centred samples span one
    direction, so every pair of representations has CKA 1)."""
    needed = 4 if debiased else 2
    if n < needed:
        estimator = "the debiased estimator (unbiased HSIC)" if debiased else "CKA"
        raise ValueError(f"{estimator} needs at least {needed} samples, got n={n}")
    if not debiased and n == 2:
        warnings.warn(
            "biased CKA of n=2 samples is 1 for any two representations (two centred samples "
            "span a single direction); it measures nothing: use more samples",
            RuntimeWarning,
            stacklevel=3,
        )
