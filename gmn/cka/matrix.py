"""The layer × layer matrix of CKA or another measure: its type, its files, and cka_matrix."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .estimators import Estimator, LayerStatistics, as_tensor, layer_cka, named_layers
from .statistics import (
    adjust_p_values,
    check_permutations,
    layer_jackknife,
    layer_permutation_test,
    warn_if_unreachable,
)

FORMAT = "gmn.cka.CKAMatrix/1"
TENSORS = ("values", "p_values", "baseline", "ci_low", "ci_high")


@dataclass
class CKAMatrix:
    """``values[i, j]`` compares row layer i with column layer j (``[A, B]`` float64,
    differentiable when computed in memory).

    measure: ``"cka"`` (with its ``estimator``) or another similarity measure,
    ``"procrustes"``, ``"cca"``, ``"svcca"``, ``"pwcca"`` or ``"rsa"`` (no estimator); higher
    values mean more similar for each of them. p_values, baseline: ``[A, B]`` from a
    permutation test of ``permutations`` permutations (on ``permutation_samples`` samples,
    all of them when None): its p-value and the mean value on shuffled rows. ci_low,
    ci_high: ``[A, B]`` jackknife interval bounds (``confidence`` given).
    """

    values: Tensor
    row_names: list[str]
    col_names: list[str]
    estimator: Estimator | None = None
    measure: str = "cka"
    p_values: Tensor | None = None
    baseline: Tensor | None = None
    ci_low: Tensor | None = None
    ci_high: Tensor | None = None
    confidence: float | None = None
    permutations: int | None = None
    permutation_samples: int | None = None

    def __post_init__(self):
        if (self.measure == "cka") != (self.estimator is not None):
            raise ValueError(
                f"a CKA matrix names its estimator and no other measure has one; got measure "
                f"{self.measure!r} with estimator {self.estimator}"
            )

    def __getitem__(self, names: tuple[str, str]) -> float:
        """``matrix["layer_a", "layer_b"]``: one value by layer names."""
        row, col = names
        return float(self.values[self.row_names.index(row), self.col_names.index(col)])

    @property
    def label(self) -> str:
        """What the values are, e.g. ``"debiased linear CKA"`` or ``"procrustes"``."""
        return self.estimator.label if self.estimator is not None else self.measure

    def to_dict(self) -> dict:
        """Plain lists and strings (JSON-serialisable), for reports; absent statistics are None."""

        def plain(tensor: Tensor | None):
            return None if tensor is None else tensor.detach().cpu().tolist()

        return {
            "measure": self.measure,
            "estimator": None if self.estimator is None else self.label,
            "row_names": list(self.row_names),
            "col_names": list(self.col_names),
            **{key: plain(getattr(self, key)) for key in TENSORS},
            "confidence": self.confidence,
            "permutations": self.permutations,
            "permutation_samples": self.permutation_samples,
        }

    def adjusted_p_values(self, method: str = "holm", alpha: float = 0.05) -> Tensor:
        """``p_values`` corrected for testing every cell: ``"holm"`` (family-wise error) or
        ``"bh"`` (Benjamini–Hochberg false discovery rate); see ``statistics.py``. Warns when
        ``permutations`` are too few for any cell to reach ``alpha`` after the correction."""
        if self.p_values is None:
            raise ValueError("this matrix has no p-values: compute it with permutations > 0")
        if self.permutations is not None:
            cells = int((~torch.isnan(torch.as_tensor(self.p_values, dtype=torch.float64))).sum())
            warn_if_unreachable(self.permutations, cells, method, alpha)
        return adjust_p_values(self.p_values, method)

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``path.safetensors`` (the ``[A, B]`` tensors) and ``path.json`` (layer names,
        measure, estimator, confidence, permutations and the tensors file's sha256); returns
        both paths."""
        from safetensors.torch import save_file

        tensors_path, meta_path = _paths(path)
        tensors = {
            key: getattr(self, key).detach().to("cpu", torch.float64).contiguous()
            for key in TENSORS
            if getattr(self, key) is not None
        }
        save_file(tensors, str(tensors_path))
        meta = {
            "format": FORMAT,
            "row_names": list(self.row_names),
            "col_names": list(self.col_names),
            "measure": self.measure,
            "estimator": None if self.estimator is None else dataclasses.asdict(self.estimator),
            "confidence": self.confidence,
            "permutations": self.permutations,
            "permutation_samples": self.permutation_samples,
            "tensors": sorted(tensors),
            "sha256": hashlib.sha256(tensors_path.read_bytes()).hexdigest(),
        }
        meta_path.write_text(json.dumps(meta, indent=1))
        return tensors_path, meta_path

    @classmethod
    def load(cls, path: str | Path) -> CKAMatrix:
        """Read a matrix written by :meth:`save`, checking the checksum, the tensor keys and
        that every tensor is ``[len(row_names), len(col_names)]``."""
        from safetensors.torch import load_file

        tensors_path, meta_path = _paths(path)
        for file in (tensors_path, meta_path):
            if not file.is_file():
                raise FileNotFoundError(f"no CKA matrix file {file}")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{meta_path} is not valid JSON ({error}); save the matrix again"
            ) from None
        if meta.get("format") != FORMAT:
            raise ValueError(f"{meta_path} is not a gmn CKA matrix (format {meta.get('format')!r})")
        digest = hashlib.sha256(tensors_path.read_bytes()).hexdigest()
        if digest != meta["sha256"]:
            raise ValueError(
                f"{tensors_path} does not match {meta_path} (sha256 {digest[:12]}… != "
                f"{meta['sha256'][:12]}…): it was changed or truncated; save the matrix again"
            )
        tensors = load_file(str(tensors_path))
        if sorted(tensors) != meta["tensors"]:
            raise ValueError(
                f"{tensors_path} holds {sorted(tensors)}, {meta_path} lists {meta['tensors']}"
            )
        shape = (len(meta["row_names"]), len(meta["col_names"]))
        for key, tensor in tensors.items():
            if tuple(tensor.shape) != shape:
                raise ValueError(
                    f"{tensors_path}: {key} has shape {tuple(tensor.shape)}, names give {shape}"
                )
        estimator = meta["estimator"]
        return cls(
            row_names=meta["row_names"],
            col_names=meta["col_names"],
            estimator=None if estimator is None else Estimator(**estimator),
            measure=meta.get("measure", "cka"),  # optional keys: a CKA matrix's defaults
            confidence=meta["confidence"],
            permutations=meta.get("permutations"),
            permutation_samples=meta.get("permutation_samples"),
            **{key: tensors.get(key) for key in TENSORS},
        )


def _paths(path: str | Path) -> tuple[Path, Path]:
    base = Path(path)
    if base.suffix in (".safetensors", ".json"):
        base = base.with_suffix("")
    return base.with_suffix(".safetensors"), base.with_suffix(".json")


def cka_matrix(
    reps_a,
    reps_b=None,
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
    lists of tensors (numpy arrays work too), all with the same n samples in the same
    order; ``reps_b=None`` compares ``reps_a`` with itself (the symmetric half is computed
    once). Each layer's statistics (centring, norms, kernels, self-HSIC) are computed once.
    Estimator options are those of :func:`gmn.cka.cka`; ``permutations > 0`` adds
    permutation p-values and shuffled-row baselines, ``confidence`` (e.g. 0.95) jackknife
    intervals over ``jackknife_groups`` groups. ``seed`` fixes all random draws.
    """
    check_permutations(permutations)
    estimator = Estimator(kernel, debiased, threshold, median, method)
    named_a = {k: as_tensor(v, f"a[{k!r}]") for k, v in named_layers(reps_a, "reps_a").items()}
    named_b = (
        named_a
        if reps_b is None
        else {k: as_tensor(v, f"b[{k!r}]") for k, v in named_layers(reps_b, "reps_b").items()}
    )
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
