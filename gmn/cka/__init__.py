"""Centred kernel alignment (CKA): exact, streaming and debiased, with statistics.

Owns representation similarity: pure tensor math on [n, d] matrices, no models.
May import: gmn.memory.
Exception: gmn.cka.comparison may import: gmn.probing, gmn.batches.
(``compare`` runs two models over a loader, so it captures their states with
``gmn.probe``; every other module of ``gmn.cka`` is tensor math.)

- :func:`cka`, :func:`linear_cka`, :func:`rbf_cka`: one pair of representations.
- :class:`CKAAccumulator`: exact linear CKA streamed from minibatches.
- :class:`MinibatchCKA`: Nguyen et al.'s minibatch approximation.
- :func:`compare`: two models' layer × layer CKA over a whole DataLoader, streamed
  (:class:`CKAGrid`, :class:`MinibatchGrid`, :class:`RandomFourierFeatures`).
- :func:`cka_matrix`: every layer against every layer, with optional statistics.
- :func:`permutation_test`, :func:`jackknife_interval`: uncertainty of one value.
- :func:`plot_cka`: heatmap (needs matplotlib).
- beyond CKA: :func:`procrustes_distance`, :func:`canonical_correlations`, :func:`svcca`,
  :func:`pwcca`, :func:`rsa`, :func:`similarity_matrix`; :func:`adjust_p_values` (Holm,
  Benjamini–Hochberg), :func:`smallest_adjusted_p`.

>>> import torch, gmn.cka
>>> x = torch.randn(100, 10, generator=torch.Generator().manual_seed(0))
>>> round(float(gmn.cka.linear_cka(x, 2 * x + 1)), 12)
1.0
"""

from .accumulator import CKAAccumulator
from .cca import canonical_correlations, mean_cca, pwcca, svcca
from .comparison import compare
from .correction import adjust_p_values, smallest_adjusted_p
from .estimators import cka, linear_cka, rbf_cka
from .grid import CKAGrid
from .layer import Estimator
from .matrix import CKAMatrix, cka_matrix
from .measures import SimilarityMatrix, similarity_matrix
from .minibatch import MinibatchCKA, MinibatchGrid
from .plot import plot_cka
from .procrustes import procrustes_distance, procrustes_similarity
from .random_features import RandomFourierFeatures
from .rsa import rsa
from .statistics import ConfidenceInterval, PermutationTest, jackknife_interval, permutation_test

__all__ = [
    "CKAAccumulator",
    "CKAGrid",
    "CKAMatrix",
    "ConfidenceInterval",
    "Estimator",
    "MinibatchCKA",
    "MinibatchGrid",
    "RandomFourierFeatures",
    "SimilarityMatrix",
    "adjust_p_values",
    "canonical_correlations",
    "PermutationTest",
    "cka",
    "cka_matrix",
    "compare",
    "jackknife_interval",
    "linear_cka",
    "permutation_test",
    "mean_cca",
    "plot_cka",
    "procrustes_distance",
    "procrustes_similarity",
    "pwcca",
    "rbf_cka",
    "rsa",
    "similarity_matrix",
    "smallest_adjusted_p",
    "svcca",
]
