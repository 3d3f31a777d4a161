"""CKA of one pair of representations: input checks, exact centring, kernels, HSIC, the ratio.

HSIC estimators, with ``K``, ``L`` the ``n × n`` kernel matrices of the two representations:

- biased (Gretton et al. 2005): ``HSIC_0(K, L) = tr(K H L H)`` with ``H = I - 11ᵀ/n`` (the
  usual ``1/(n-1)²`` factor cancels in CKA and is left out);
- debiased (Song et al. 2012): with ``K̃``, ``L̃`` the kernels with a zeroed diagonal,
  ``HSIC_1 = [tr(K̃L̃) + 1ᵀK̃1·1ᵀL̃1 / ((n-1)(n-2)) - 2/(n-2)·1ᵀK̃L̃1] / (n(n-3))``, which
  equals ``<U(K), U(L)> / (n(n-3))`` for the U-centred kernels ``U``;

and ``CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``. A representation whose
self-HSIC is not positive (no variance, or the debiased estimator on a handful of samples)
has no defined CKA: :func:`defined_self_hsic` turns it into NaN with a warning, for every
estimator of the package.

Precision: every sum over samples or features is returned in float64, while the products
themselves run in the input's dtype (float32 BLAS is much faster than float64, and an
upcasting reduction is slower than either). :func:`inner_products` multiplies blocks of at
most ``BLOCK`` rows, of equal size (a short last block slows the product down), and sums
the block results in float64, so no float32 dot product runs over more than ``BLOCK``
terms. Column sums are torch's own cascade reduction, faster and more accurate than a
product with a vector of ones.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from gmn import large_tensors

KERNELS = ("linear", "rbf")
METHODS = ("auto", "features", "gram")
MEDIAN_RULES = ("numpy", "lower", "offdiagonal")
BLOCK = 16384


@dataclass(frozen=True)
class Estimator:
    """Which CKA to compute.

    kernel: ``"linear"`` or ``"rbf"``. debiased: unbiased HSIC (Song et al.) instead
    of HSIC₀. threshold, median: the RBF bandwidth rule (see :func:`rbf_gram`).
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

    @property
    def label(self) -> str:
        """A short description, e.g. ``"debiased linear CKA"``."""
        kernel = "linear" if self.kernel == "linear" else f"RBF (threshold {self.threshold:g})"
        return f"{'debiased' if self.debiased else 'biased'} {kernel} CKA"


def cka(
    x: Tensor,
    y: Tensor,
    *,
    kernel: str = "linear",
    debiased: bool = False,
    threshold: float = 1.0,
    median: str = "numpy",
    method: str = "auto",
) -> Tensor:
    """Centred kernel alignment between ``x`` ``[n, ...]`` and ``y`` ``[n, ...]``.

    Samples are rows; trailing dimensions are flattened. Returns a float64 scalar
    tensor, differentiable with respect to both inputs. The options are those of
    :class:`Estimator`; the RBF bandwidth is ``σ = threshold · sqrt(median squared
    distance)``. Raises ``ValueError`` for mismatched ``n``, NaN/Inf, or too few samples
    (n < 4 for the debiased estimator); NaN with a ``RuntimeWarning`` for a representation
    without variance.
    """
    estimator = Estimator(kernel, debiased, threshold, median, method)
    return layer_cka(LayerStatistics(x, estimator, "x"), LayerStatistics(y, estimator, "y"))


class LayerStatistics:
    """What CKA needs from one representation ``[n, ...]``.

    Features are centred exactly and scaled by a power of two ``scale`` that brings their
    largest magnitude near 1 (:func:`centre`; CKA is scale-invariant), so that float32
    products neither overflow nor underflow. In feature form it keeps the centred features
    ``[n, d]`` (in the product dtype) and, for the debiased estimator, their squared row
    norms ``[n]``; in Gram form the centred kernel matrix ``[n, n]`` (float64).
    ``self_hsic`` is HSIC(K, K) as computed (NaN without variance); :attr:`checked_self_hsic`
    is what CKA divides by.
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
        self._gram = self._checked = None
        if self.constant:
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

    @property
    def checked_self_hsic(self) -> Tensor:
        """``self_hsic``, or NaN with a warning (once per layer) when CKA is undefined."""
        if self._checked is None:
            self._checked = defined_self_hsic(self.self_hsic, self.name, self.constant, self.n)
        return self._checked


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
    self_a, self_b = a.checked_self_hsic, b.checked_self_hsic
    if torch.isnan(self_a) or torch.isnan(self_b):
        return torch.tensor(float("nan"), dtype=torch.float64, device=a.device)
    return cka_from_hsic(hsic(a, b, permutation), self_a, self_b)


# ---- the CKA ratio and when it is undefined --------------------------------------------


def cka_from_hsic(cross: Tensor, self_a: Tensor, self_b: Tensor) -> Tensor:
    """``cross / sqrt(self_a · self_b)`` (broadcasting: ``[A, B]`` from ``[A, 1]``, ``[1, B]``);
    NaN wherever a self-HSIC went through :func:`defined_self_hsic` as undefined."""
    return cross / torch.sqrt(self_a * self_b)


def defined_self_hsic(
    value: Tensor, name: str, constant: bool = False, n: int | None = None
) -> Tensor:
    """A layer's self-HSIC (float64 scalar), or NaN with a ``RuntimeWarning`` naming the layer
    when CKA against it is undefined: every one of its ``n`` samples identical (``constant``),
    or a self-HSIC that is not positive (no usable variance; the debiased estimator on a
    handful of samples)."""
    if not constant and value > 0:
        return value
    reason = (
        f"zero variance (all {n} samples identical)"
        if constant
        else f"no usable variance (self-HSIC {float(value):.3g}, not positive)"
    )
    warnings.warn(
        f"{name} has {reason}; its CKA is undefined and returned as NaN",
        RuntimeWarning,
        stacklevel=3,
    )
    return torch.full_like(torch.as_tensor(value, dtype=torch.float64), float("nan"))


# ---- HSIC ---------------------------------------------------------------------------------


def linear_hsic(
    n: int, cross_sq: Tensor, sum_ab: Tensor, sum_a: Tensor, sum_b: Tensor, debiased: bool
) -> Tensor:
    """HSIC of the linear kernels of column-centred features ``X`` ``[n, p]`` and ``Y`` ``[n, q]``.

    ``cross_sq = ‖XᵀY‖²_F``; ``a_i = ‖x_i‖²`` and ``b_i = ‖y_i‖²`` are the squared row
    norms, ``sum_ab = Σ a_i b_i``, ``sum_a = Σ a_i``, ``sum_b = Σ b_i``. Because the
    columns are centred, ``K̃1 = -a`` and ``L̃1 = -b`` in the debiased formula, so every
    term is a sum over samples. All arguments are float64 scalars.
    """
    if not debiased:
        return cross_sq
    return (cross_sq - n / (n - 2) * sum_ab + sum_a * sum_b / ((n - 1) * (n - 2))) / (n * (n - 3))


def center_gram(gram: Tensor, debiased: bool) -> Tensor:
    """Centre a symmetric kernel matrix ``[n, n]``: ``HKH`` (biased) or U-centring (debiased).

    U-centring zeroes the diagonal, then subtracts row and column means taken over the
    off-diagonal entries (``Σ_j K̃_ij / (n-2)``) and adds back the grand mean, so that
    ``<U(K), U(L)> / (n(n-3))`` is the unbiased HSIC.
    """
    n = gram.shape[0]
    if not debiased:
        row_means = gram.mean(dim=0)
        return gram - row_means[:, None] - row_means[None, :] + row_means.mean()
    off_diagonal = gram - torch.diag_embed(torch.diagonal(gram))
    means = off_diagonal.sum(dim=0) / (n - 2)
    means = means - means.sum() / (2 * (n - 1))
    centred = off_diagonal - means[:, None] - means[None, :]
    return centred - torch.diag_embed(torch.diagonal(centred))


def gram_hsic(centred_a: Tensor, centred_b: Tensor, debiased: bool) -> Tensor:
    """HSIC from two kernel matrices ``[n, n]`` already passed through :func:`center_gram`.

    An elementwise product and a sum, O(n²): the matrix product ``KL`` is never formed.
    """
    inner = (centred_a * centred_b).sum()
    n = centred_a.shape[0]
    return inner / (n * (n - 3)) if debiased else inner


# ---- kernels --------------------------------------------------------------------------------


def linear_gram(features: Tensor) -> Tensor:
    """``X Xᵀ`` as float64 ``[n, n]`` for features ``[n, d]``, summed over feature blocks."""
    transposed = features.T
    return inner_products(transposed, transposed)


def squared_distances(gram: Tensor) -> Tensor:
    """Pairwise squared Euclidean distances ``[n, n]`` from a linear Gram matrix."""
    norms = torch.diagonal(gram)
    return (norms[:, None] + norms[None, :] - 2 * gram).clamp_min(0)


def median_squared_distance(distances: Tensor, rule: str = "numpy") -> Tensor:
    """Median of the squared pairwise distances ``[n, n]`` under a named rule.

    - ``"numpy"``: all n² entries (the zero diagonal included), the mean of the two
      middle values when their count is even, like ``numpy.median`` (Kornblith et al.);
    - ``"lower"``: all n² entries, the lower middle value, like ``torch.median``;
    - ``"offdiagonal"``: the n(n-1)/2 distinct pairs only, ``numpy.median`` semantics.
    """
    if rule not in MEDIAN_RULES:
        raise ValueError(f"median rule must be one of {MEDIAN_RULES}, got {rule!r}")
    if rule == "offdiagonal":
        rows, cols = torch.triu_indices(*distances.shape, offset=1, device=distances.device)
        values = distances[rows, cols]
    else:
        values = distances.flatten()
    count = values.numel()
    lower = torch.kthvalue(values, (count + 1) // 2).values
    if rule == "lower" or count % 2 == 1:
        return lower
    upper = torch.kthvalue(values, count // 2 + 1).values
    return (lower + upper) / 2


def rbf_gram(features: Tensor, threshold: float = 1.0, median: str = "numpy") -> Tensor:
    """RBF kernel ``exp(-‖x_i - x_j‖² / (2σ²))`` ``[n, n]`` with ``σ = threshold · sqrt(m)``.

    ``m`` is the median squared pairwise distance (see :func:`median_squared_distance`),
    so ``threshold`` is the bandwidth as a fraction of the median distance.
    """
    if not threshold > 0:
        raise ValueError(f"the RBF threshold must be positive, got {threshold}")
    distances, scale = distances_and_median(features, median)
    return torch.exp(-distances / (2 * threshold**2 * scale))


def distances_and_median(features: Tensor, median: str = "numpy") -> tuple[Tensor, Tensor]:
    """The squared pairwise distances ``[n, n]`` of ``features`` ``[n, d]`` and their median
    ``m`` (float64 scalar) under the ``median`` rule, from which the RBF bandwidth follows;
    ``ValueError`` when ``m`` is zero."""
    distances = squared_distances(linear_gram(features))
    scale = median_squared_distance(distances, median)
    if scale <= 0:
        raise ValueError(
            "the median pairwise distance is zero (more than half the sample pairs are "
            f"identical under the {median!r} rule); the RBF bandwidth is undefined"
        )
    return distances, scale


# ---- exact centring ---------------------------------------------------------------------------


@dataclass
class Centred:
    """features ``[n, d]``: ``(x - mean) · scale`` in the input's dtype, columns summing to
    zero up to rounding of the centred values themselves. scale: the power of two that brings
    a bound on the centred magnitudes into [0.5, 1) (1 without variance); the bound is exact
    when the column means agree and exceeds the largest magnitude by at most the spread of
    the column means otherwise. constant: every sample identical (checked exactly)."""

    features: Tensor
    scale: float
    constant: bool


def centre(x: Tensor, name: str = "x") -> Centred:
    """Centre ``x`` ``[n, d]`` (float32 or float64) exactly and scale it by a power of two.

    Subtracting the float64 mean rounded to ``x``'s dtype leaves each column a mean of up
    to half an ulp of the original mean, which matters once ``|mean| ≫ std``. A second pass
    removes that residual mean, measured on the centred values where it is exact to
    rounding (cheaper than deciding whether it is needed, which takes the per-column
    ranges). The power of two (exact; CKA does not depend on it) keeps float32 products
    from overflowing or underflowing. Both passes stay differentiable.
    """
    n = x.shape[0]
    mean = finite_column_sums(x, name) / n
    with torch.no_grad():  # one global pass: per-column extremes cost two slower ones
        low, high = (float(v) for v in torch.aminmax(x))
        means = mean.detach()
        # |x_ij - mean_j| <= peak, with equality somewhere when the column means agree
        peak = max(high - float(means.min()), float(means.max()) - low)
    constant = is_constant(x)
    scale = 2.0 ** -math.frexp(peak)[1] if peak > 0 and not constant else 1.0
    # huge-page memory: a fresh allocation's first touch of each small page is a page fault
    shifted = torch.add((mean.to(x.dtype) * scale).neg()[None, :], x, alpha=scale,
                        out=large_tensors.output(tuple(x.shape), x))
    shifted.sub_((column_sums(shifted) / n).to(x.dtype)[None, :])
    return Centred(shifted, scale, constant)


def is_constant(x: Tensor) -> bool:
    """Whether every row of ``x`` ``[n, d]`` equals the first, exactly. Two differing rows
    (the usual case) answer without a pass over the data."""
    if x.shape[0] > 1 and not torch.equal(x[0], x[1]):
        return False
    return bool((x == x[:1]).all())


# ---- products summed in float64 ------------------------------------------------------------------


def inner_products(a: Tensor, b: Tensor, block: int = BLOCK) -> Tensor:
    """``a.T @ b`` for ``a`` ``[m, p]`` and ``b`` ``[m, q]``, returned as float64 ``[p, q]``."""
    rows = a.shape[0]
    if rows == 0:
        return a.new_zeros((a.shape[1], b.shape[1]), dtype=torch.float64)
    size = -(-rows // -(-rows // block))  # ceil(rows / number of blocks)
    total = (a[:size].T @ b[:size]).to(torch.float64)
    for start in range(size, rows, size):
        total = total + (a[start : start + size].T @ b[start : start + size]).to(torch.float64)
    return total


def column_sums(x: Tensor) -> Tensor:
    """``x.sum(0)`` for ``x`` ``[n, d]`` as float64 ``[d]`` (summed in x's dtype; a float32
    sum of finite values can overflow to Inf)."""
    return x.sum(dim=0).to(torch.float64)


def row_sq_norms(x: Tensor, block: int = BLOCK) -> Tensor:
    """``(x * x).sum(1)`` for ``x`` ``[n, d]`` as float64 ``[n]``."""
    total = x.new_zeros(x.shape[0], dtype=torch.float64)
    for start in range(0, x.shape[1], block):
        # the norm, squared in float64: faster than an elementwise product summed, and closer
        norm = torch.linalg.vector_norm(x[:, start : start + block], dim=1)
        total = total + norm.to(torch.float64).square()
    return total


# ---- inputs ------------------------------------------------------------------------------------


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


def named_layers(layers, what: str) -> dict[str, Tensor]:
    """``{layer name: representation}`` from a dict (names kept, in order) or a list (named
    ``"0"``, ``"1"``, ...) of tensors or numpy arrays ``[n, ...]``; ``what`` names the
    argument in the ``TypeError`` or ``ValueError`` (no layers)."""
    if isinstance(layers, Mapping):
        named = {str(k): v for k, v in layers.items()}
    elif isinstance(layers, Sequence) and not isinstance(layers, (str, bytes, Tensor)):
        named = {str(i): v for i, v in enumerate(layers)}
    else:
        raise TypeError(
            f"{what} must be a dict {{layer_name: Tensor[n, ...]}} or a list of tensors "
            f"(numpy arrays work too), got {type(layers).__name__}"
        )
    if not named:
        raise ValueError(f"{what} holds no layers")
    return named


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
