"""Per-representation statistics, computed once and reused for every pair it enters."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from .centring import centre
from .hsic import center_gram, cka_from_hsic, gram_hsic, linear_hsic
from .inputs import as_samples, as_tensor, check_sample_count
from .kernels import MEDIAN_RULES, linear_gram, rbf_gram
from .products import inner_products, row_sq_norms

KERNELS = ("linear", "rbf")
METHODS = ("auto", "features", "gram")


@dataclass(frozen=True)
class Estimator:
    """Which CKA to compute.

    kernel: ``"linear"`` or ``"rbf"``. debiased: unbiased HSIC (Song et al.) instead
    of HSIC₀. threshold, median: the RBF bandwidth rule (see ``kernels.rbf_gram``).
    method: for the linear kernel, ``"features"`` (cost O(n·d²)), ``"gram"`` (O(n²·d))
    or ``"auto"``: features when d < n, else Gram.
    """

    kernel: str = "linear"
    debiased: bool = False
    threshold: float = 1.0
    median: str = "numpy"
    method: str = "auto"

    def __post_init__(self):
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {self.kernel!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.median not in MEDIAN_RULES:
            raise ValueError(f"median must be one of {MEDIAN_RULES}, got {self.median!r}")
        if self.kernel == "rbf" and self.method == "features":
            raise ValueError("the RBF kernel has no feature-space form; use method='gram'")


class LayerStatistics:
    """What CKA needs from one representation ``[n, ...]``.

    Features are centred exactly and scaled by a power of two ``scale`` that brings their
    largest magnitude near 1 (``centring.centre``; CKA is scale-invariant), so that
    float32 products neither overflow nor underflow. In feature form it keeps the
    centred features ``[n, d]`` (in the product dtype) and, for the debiased estimator,
    their squared row norms ``[n]``; in Gram form the centred kernel matrix ``[n, n]``
    (float64). ``self_hsic`` is HSIC(K, K), NaN (with a warning) without variance.
    """

    def __init__(self, x: Tensor, estimator: Estimator, name: str = "x"):
        self.shape = tuple(as_tensor(x, name).shape)
        x = as_samples(x, name)
        n, d = x.shape
        self.device = x.device
        check_sample_count(n, estimator.debiased)
        self.n, self.name, self.estimator = n, name, estimator
        centred = centre(x, name)
        self.features, self.scale, self.constant = centred.features, centred.scale, centred.constant
        self._gram = None
        if self.constant:
            warnings.warn(
                f"representation {name!r} has zero variance (all {n} samples identical); "
                "its CKA is undefined and returned as NaN",
                RuntimeWarning,
                stacklevel=2,
            )
            self.self_hsic = torch.tensor(float("nan"), dtype=torch.float64, device=x.device)
            return
        use_gram = estimator.kernel == "rbf" or estimator.method == "gram"
        self.in_feature_form = not (use_gram or (estimator.method == "auto" and d >= n))
        if self.in_feature_form:
            self.row_sq_norms = row_sq_norms(self.features) if estimator.debiased else None
        else:
            self._gram = self._centred_gram()
            self.features = None
        self.self_hsic = hsic(self, self)

    def _centred_gram(self) -> Tensor:
        est = self.estimator
        if est.kernel == "rbf":
            gram = rbf_gram(self.features, est.threshold, est.median)
        else:
            gram = linear_gram(self.features)
        return center_gram(gram, est.debiased)

    @property
    def centred_gram(self) -> Tensor:
        """The centred kernel matrix ``[n, n]``, built on first use for feature-form layers."""
        if self._gram is None:
            self._gram = self._centred_gram()
        return self._gram


def hsic(a: LayerStatistics, b: LayerStatistics, permutation: Tensor | None = None) -> Tensor:
    """HSIC between two layers (float64 scalar), the rows of ``b`` optionally permuted.

    Uses the feature-space formula when both layers are in feature form, otherwise the
    centred Gram matrices. ``permutation`` ``[n]`` reorders b's samples (permutation
    tests); self-HSICs do not change under it.
    """
    debiased = a.estimator.debiased
    if a.in_feature_form and b.in_feature_form:
        features, sq_norms = b.features, b.row_sq_norms
        if permutation is not None:
            features = features[permutation]
            sq_norms = None if sq_norms is None else sq_norms[permutation]
        cross_sq = inner_products(a.features, features).square().sum()
        if not debiased:
            return cross_sq
        return linear_hsic(
            a.n,
            cross_sq,
            (a.row_sq_norms * sq_norms).sum(),
            a.row_sq_norms.sum(),
            sq_norms.sum(),
            debiased,
        )
    gram_b = b.centred_gram
    if permutation is not None:
        gram_b = gram_b[permutation][:, permutation]
    return gram_hsic(a.centred_gram, gram_b, debiased)


def layer_cka(a: LayerStatistics, b: LayerStatistics, permutation: Tensor | None = None) -> Tensor:
    """CKA between two prepared layers (float64 scalar); NaN if either has no variance."""
    if a.n != b.n:
        raise ValueError(
            "the two representations must hold the same samples: "
            f"{a.name!r} has {a.n} rows (shape {a.shape}), {b.name!r} has {b.n} (shape {b.shape})"
        )
    if a.device != b.device:
        raise ValueError(f"{a.name!r} is on {a.device} but {b.name!r} is on {b.device}")
    if a.constant or b.constant:
        return torch.tensor(float("nan"), dtype=torch.float64, device=a.self_hsic.device)
    return cka_from_hsic(hsic(a, b, permutation), a.self_hsic, b.self_hsic)
