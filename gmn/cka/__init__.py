"""Centred kernel alignment (CKA) and other representation-similarity measures, with statistics.

Owns representation similarity: pure tensor math on [n, d] matrices, no models.
May import: gmn.large_tensors.
Exception: gmn.cka.comparison may import: gmn.probing, gmn.batches.
(``compare`` runs two models over a loader, so it captures their states with
``gmn.probe``; every other module of ``gmn.cka`` is tensor math.)

One module per concept, each importing only those above it:

- ``estimators``: :func:`cka` of one pair (linear or RBF kernel, biased or debiased HSIC)
  and what it is built from (input checks, exact centring, kernels, HSIC, :class:`Estimator`).
- ``statistics``: :func:`permutation_test`, :func:`jackknife_interval`,
  :func:`adjust_p_values` (Holm, Benjamini–Hochberg), :func:`smallest_adjusted_p`.
- ``matrix``: :class:`CKAMatrix`, the one layer × layer matrix type (any measure; saved and
  loaded verified), and :func:`cka_matrix`, every layer against every layer in memory.
- ``measures``: :func:`procrustes_similarity`, :func:`procrustes_distance`,
  :func:`canonical_correlations`, :func:`mean_cca`, :func:`svcca`, :func:`pwcca`,
  :func:`rsa` and :func:`similarity_matrix`.
- ``streaming``: :class:`CKAGrid`, exact linear CKA (and Procrustes, CCA) of every layer
  pair streamed from minibatches in memory independent of the number of samples.
- ``approximate``: :class:`MinibatchGrid` (Nguyen et al.'s minibatch CKA) and
  :class:`RandomFourierFeatures` (RBF CKA as linear CKA).
- ``comparison``: :func:`compare`, two models' layer × layer CKA over whole loaders.
- ``plot``: :func:`plot_cka`, a heatmap (needs matplotlib).

>>> import torch, gmn.cka
>>> x = torch.randn(100, 10, generator=torch.Generator().manual_seed(0))
>>> round(float(gmn.cka.cka(x, 2 * x + 1)), 12)
1.0
"""

from .approximate import MinibatchGrid, RandomFourierFeatures
from .comparison import compare
from .estimators import Estimator, cka
from .matrix import CKAMatrix, cka_matrix
from .measures import (
    canonical_correlations,
    mean_cca,
    procrustes_distance,
    procrustes_similarity,
    pwcca,
    rsa,
    similarity_matrix,
    svcca,
)
from .plot import plot_cka
from .statistics import (
    ConfidenceInterval,
    PermutationTest,
    adjust_p_values,
    jackknife_interval,
    permutation_test,
    smallest_adjusted_p,
)
from .streaming import CKAGrid

__all__ = [
    "CKAGrid",
    "CKAMatrix",
    "ConfidenceInterval",
    "Estimator",
    "MinibatchGrid",
    "PermutationTest",
    "RandomFourierFeatures",
    "adjust_p_values",
    "canonical_correlations",
    "cka",
    "cka_matrix",
    "compare",
    "jackknife_interval",
    "mean_cca",
    "permutation_test",
    "plot_cka",
    "procrustes_distance",
    "procrustes_similarity",
    "pwcca",
    "rsa",
    "similarity_matrix",
    "smallest_adjusted_p",
    "svcca",
]
