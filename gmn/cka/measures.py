"""A matrix of any representation-similarity measure, with layer names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class SimilarityMatrix:
    """``values[i, j]``: ``measure`` between row layer i and column layer j (float64).

    p_values: ``[A, B]`` or None. Higher values mean more similar for every measure here
    (Procrustes is given as the similarity ``‖XᵀY‖_*``; its distance is in ``distance``).
    """

    values: Tensor
    row_names: list[str]
    col_names: list[str]
    measure: str
    p_values: Tensor | None = None

    def __getitem__(self, names: tuple[str, str]) -> float:
        row, col = names
        return float(self.values[self.row_names.index(row), self.col_names.index(col)])

    @property
    def label(self) -> str:
        return self.measure

    def to_dict(self) -> dict:
        plain = None if self.p_values is None else self.p_values.tolist()
        return {
            "measure": self.measure,
            "row_names": list(self.row_names),
            "col_names": list(self.col_names),
            "values": self.values.tolist(),
            "p_values": plain,
        }


def similarity_matrix(
    reps_a, reps_b=None, *, measure: str = "procrustes", **options
) -> SimilarityMatrix:
    """``measure`` between each layer of ``reps_a`` and each of ``reps_b`` (``{name: [n, ...]}``
    or lists, tensors or numpy arrays; ``reps_b=None``: ``reps_a`` with itself).

    measure: ``"procrustes"``, ``"cca"`` (mean canonical correlation), ``"svcca"``,
    ``"pwcca"`` or ``"rsa"``; ``options`` go to that function.
    """
    from .matrix import _named

    functions: dict[str, Callable[..., Tensor]] = _measures()
    if measure not in functions:
        raise ValueError(f"measure must be one of {sorted(functions)}, got {measure!r}")
    named_a = _named(reps_a, "a")
    named_b = named_a if reps_b is None else _named(reps_b, "b")
    fn = functions[measure]
    values = torch.tensor(
        [[float(fn(a, b, **options)) for b in named_b.values()] for a in named_a.values()],
        dtype=torch.float64,
    )
    return SimilarityMatrix(values, list(named_a), list(named_b), measure)


def _measures() -> dict[str, Callable[..., Tensor]]:
    from .cca import mean_cca, pwcca, svcca
    from .procrustes import procrustes_similarity
    from .rsa import rsa

    return {
        "procrustes": procrustes_similarity,
        "cca": mean_cca,
        "svcca": svcca,
        "pwcca": pwcca,
        "rsa": rsa,
    }
