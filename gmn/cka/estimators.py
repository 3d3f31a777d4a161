"""CKA between two representations: linear or RBF kernel, biased or debiased HSIC."""

from __future__ import annotations

from torch import Tensor

from .layer import Estimator, LayerStatistics, layer_cka


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
    tensor, differentiable with respect to both inputs. See :class:`Estimator` for
    the options. Raises ``ValueError`` for mismatched ``n``, NaN/Inf, or too few
    samples (n < 4 for the debiased estimator); NaN with a ``RuntimeWarning`` for a
    representation without variance.
    """
    estimator = Estimator(kernel, debiased, threshold, median, method)
    return layer_cka(LayerStatistics(x, estimator, "x"), LayerStatistics(y, estimator, "y"))


def linear_cka(x: Tensor, y: Tensor, *, debiased: bool = False, method: str = "auto") -> Tensor:
    """Linear CKA, ``‖XᵀY‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F)`` for centred X, Y when biased."""
    return cka(x, y, kernel="linear", debiased=debiased, method=method)


def rbf_cka(
    x: Tensor,
    y: Tensor,
    *,
    threshold: float = 1.0,
    debiased: bool = False,
    median: str = "numpy",
) -> Tensor:
    """RBF CKA with bandwidth ``σ = threshold · sqrt(median squared distance)``."""
    return cka(x, y, kernel="rbf", debiased=debiased, threshold=threshold, median=median)
