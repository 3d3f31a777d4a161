"""CKA between every layer of one network and every layer of another."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .inputs import as_tensor
from .layer import Estimator, LayerStatistics, layer_cka
from .statistics import layer_jackknife, layer_permutation_test

Representations = Mapping[str, Tensor] | Sequence[Tensor]


@dataclass
class CKAMatrix:
    """CKA between layers: ``values[i, j]`` compares row layer i with column layer j.

    values: ``[A, B]`` float64 (differentiable). p_values, baseline: ``[A, B]`` from a
    permutation test of ``permutations`` permutations (on ``permutation_samples`` samples,
    all of them when None): its p-value and the mean CKA on shuffled rows. ci_low, ci_high:
    ``[A, B]`` jackknife interval bounds (``confidence`` given).
    """

    values: Tensor
    row_names: list[str]
    col_names: list[str]
    estimator: Estimator
    p_values: Tensor | None = None
    baseline: Tensor | None = None
    ci_low: Tensor | None = None
    ci_high: Tensor | None = None
    confidence: float | None = field(default=None)
    permutations: int | None = None
    permutation_samples: int | None = None

    def __getitem__(self, names: tuple[str, str]) -> float:
        """``matrix["layer_a", "layer_b"]``: one value by layer names."""
        row, col = names
        return float(self.values[self.row_names.index(row), self.col_names.index(col)])

    def to_dict(self) -> dict:
        """Plain lists and strings (JSON-serialisable), for reports; absent statistics are None."""

        def plain(tensor: Tensor | None):
            return None if tensor is None else tensor.detach().cpu().tolist()

        return {
            "estimator": self.label,
            "row_names": list(self.row_names),
            "col_names": list(self.col_names),
            "values": plain(self.values),
            "p_values": plain(self.p_values),
            "baseline": plain(self.baseline),
            "ci_low": plain(self.ci_low),
            "ci_high": plain(self.ci_high),
            "confidence": self.confidence,
            "permutations": self.permutations,
            "permutation_samples": self.permutation_samples,
        }

    def adjusted_p_values(self, method: str = "holm", alpha: float = 0.05) -> Tensor:
        """``p_values`` corrected for testing every cell: ``"holm"`` (family-wise error) or
        ``"bh"`` (Benjamini–Hochberg false discovery rate); see ``correction.py``. Warns when
        ``permutations`` are too few for any cell to reach ``alpha`` after the correction."""
        if self.p_values is None:
            raise ValueError("this matrix has no p-values: compute it with permutations > 0")
        from .correction import adjust_p_values, warn_if_unreachable

        if self.permutations is not None:
            cells = int((~torch.isnan(torch.as_tensor(self.p_values, dtype=torch.float64))).sum())
            warn_if_unreachable(self.permutations, cells, method, alpha)
        return adjust_p_values(self.p_values, method)

    def save(self, path) -> tuple:
        """Write ``path.safetensors`` and ``path.json`` (see ``gmn.cka.storage``)."""
        from .storage import save_matrix

        return save_matrix(self, path)

    @classmethod
    def load(cls, path) -> CKAMatrix:
        """Read a matrix written by :meth:`save`, verified (checksum, names, shapes)."""
        from .storage import load_matrix

        return load_matrix(path)

    @property
    def label(self) -> str:
        """A short description of the estimator, e.g. ``"debiased linear CKA"``."""
        est = self.estimator
        kernel = "linear" if est.kernel == "linear" else f"RBF (threshold {est.threshold:g})"
        return f"{'debiased' if est.debiased else 'biased'} {kernel} CKA"


def _named(reps: Representations, side: str) -> dict[str, Tensor]:
    if isinstance(reps, Mapping):
        named = {str(k): v for k, v in reps.items()}
    elif isinstance(reps, Sequence) and not isinstance(reps, (str, bytes, Tensor)):
        named = {str(i): v for i, v in enumerate(reps)}
    else:
        raise TypeError(
            f"reps_{side} must be a dict {{layer_name: Tensor[n, ...]}} or a list of tensors "
            "(numpy arrays work too), "
            f"got {type(reps).__name__}"
        )
    if not named:
        raise ValueError(f"reps_{side} holds no layers")
    return {k: as_tensor(v, f"{side}[{k!r}]") for k, v in named.items()}


def cka_matrix(
    reps_a: Representations,
    reps_b: Representations | None = None,
    *,
    kernel: str = "linear",
    debiased: bool = False,
    threshold: float = 1.0,
    median: str = "numpy",
    method: str = "auto",
    permutations: int = 0,
    confidence: float | None = None,
    jackknife_groups: int = 20,
    seed: int = 0,
) -> CKAMatrix:
    """CKA between each layer of ``reps_a`` and each layer of ``reps_b``.

    ``reps_a``, ``reps_b``: ``{layer_name: Tensor[n, ...]}`` (as from ``gmn.probe``) or
    lists of tensors, all with the same n samples in the same order; ``reps_b=None``
    compares ``reps_a`` with itself (the symmetric half is computed once). Each layer's
    statistics (centring, norms, kernels, self-HSIC) are computed once. Estimator
    options are those of :func:`gmn.cka.cka`; ``permutations > 0`` adds permutation
    p-values and shuffled-row baselines, ``confidence`` (e.g. 0.95) jackknife intervals
    over ``jackknife_groups`` groups. ``seed`` fixes all random draws.
    """
    if isinstance(permutations, bool) or not isinstance(permutations, int) or permutations < 0:
        raise ValueError(
            f"permutations must be a whole number ≥ 0 (0: no test), got {permutations!r}"
        )
    estimator = Estimator(kernel, debiased, threshold, median, method)
    named_a = _named(reps_a, "a")
    named_b = named_a if reps_b is None else _named(reps_b, "b")
    layers_a = {k: LayerStatistics(v, estimator, f"a[{k!r}]") for k, v in named_a.items()}
    layers_b = (
        layers_a
        if reps_b is None
        else {k: LayerStatistics(v, estimator, f"b[{k!r}]") for k, v in named_b.items()}
    )
    counts = {layer.name: layer.n for layer in (*layers_a.values(), *layers_b.values())}
    if len(set(counts.values())) > 1:
        raise ValueError(f"all layers must hold the same samples; row counts: {counts}")
    rows, cols = list(layers_a), list(layers_b)
    generator = torch.Generator().manual_seed(seed)
    cells: dict[tuple[int, int], dict[str, Tensor | float]] = {}
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            if reps_b is None and j < i:
                cells[i, j] = cells[j, i]
                continue
            cell: dict[str, Tensor | float] = {}
            if permutations > 0:
                test = layer_permutation_test(layers_a[row], layers_b[col], permutations, generator)
                cell.update(value=test.value, p_value=test.p_value, baseline=test.baseline)
            else:
                cell["value"] = layer_cka(layers_a[row], layers_b[col])
            if confidence is not None:
                interval = layer_jackknife(
                    named_a[row],
                    named_b[col],
                    estimator,
                    float(cell["value"]),
                    jackknife_groups,
                    confidence,
                    seed,
                )
                cell.update(ci_low=interval.low, ci_high=interval.high)
            cells[i, j] = cell

    def grid(key: str) -> Tensor:
        return torch.tensor(
            [[float(cells[i, j][key]) for j in range(len(cols))] for i in range(len(rows))],
            dtype=torch.float64,
        )

    values = torch.stack(
        [torch.stack([cells[i, j]["value"] for j in range(len(cols))]) for i in range(len(rows))]
    )
    return CKAMatrix(
        values=values,
        row_names=rows,
        col_names=cols,
        estimator=estimator,
        p_values=grid("p_value") if permutations > 0 else None,
        baseline=grid("baseline") if permutations > 0 else None,
        ci_low=grid("ci_low") if confidence is not None else None,
        ci_high=grid("ci_high") if confidence is not None else None,
        confidence=confidence,
        permutations=permutations or None,
    )
