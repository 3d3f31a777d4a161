"""Centred kernel alignment (CKA): exact, streaming and debiased, with statistics.

>>> import torch, gmn.cka
>>> x = torch.randn(100, 10, generator=torch.Generator().manual_seed(0))
>>> float(gmn.cka.linear_cka(x, 2 * x + 1))
1.0
"""

from .estimators import cka, linear_cka, rbf_cka

__all__ = ["cka", "linear_cka", "rbf_cka"]
