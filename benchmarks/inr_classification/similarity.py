"""Stage "cka": layer × layer CKA between seeds of a family and between families.

For every pair of trained models the debiased and the biased linear CKA matrices over the
probed test-set states are computed. Each comparison (one family against itself, or two
families) is summarised by a headline number per pair of models:

* between seeds of one family: the mean same-layer CKA (each layer paired with the layer
  of the same name);
* between two families: the symmetric best-match CKA (each layer's highest CKA with any
  layer of the other model, averaged over both models' layers).

The first pair of each comparison also gets a permutation-test p-value and the mean CKA
of shuffled rows (the value unpaired samples give) for every cell, on the debiased
estimator (``--cka-permutations``). The confidence interval of each headline is taken
over seed pairs (a t-interval), the variation that the paper's claims are about.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .analysis import best_match_mean, mean_std, same_layer_mean

CONFIDENCE = 0.95


def model_pairs(families: list[str], seeds: int) -> dict[str, list[tuple[int, int]]]:
    """Comparison name → seed pairs: "gmn" → (i, j) with i < j; "gmn-mlp" → (i, i).

    Both give S pairs for S = 3 seeds, each model in two of them at most, so the per-pair
    values of two comparisons can be set against each other by a permutation test."""
    pairs = {f: list(itertools.combinations(range(seeds), 2)) for f in families}
    for a, b in itertools.combinations(families, 2):
        pairs[f"{a}-{b}"] = [(i, i) for i in range(seeds)]
    return pairs


def _matrix_dict(matrix) -> list[list[float]]:
    return matrix.values.detach().double().tolist()


def compare(
    reps_a: dict[str, Tensor],
    reps_b: dict[str, Tensor],
    same_family: bool,
    stats: bool,
    permutations: int,
    seed: int,
) -> dict:
    """Debiased and biased CKA matrices of two models (+ statistics when ``stats``)."""
    from gmn.cka import cka_matrix

    debiased = cka_matrix(
        reps_a, reps_b, debiased=True, permutations=permutations if stats else 0, seed=seed
    )
    biased = cka_matrix(reps_a, reps_b, debiased=False)
    rows, cols = list(debiased.row_names), list(debiased.col_names)

    def headline(matrix) -> float:  # layers matched by name, never by position
        values = matrix.values.detach()
        return same_layer_mean(values, rows, cols) if same_family else best_match_mean(values)

    out = {
        "rows": rows,
        "cols": cols,
        "debiased": _matrix_dict(debiased),
        "biased": _matrix_dict(biased),
        "headline_debiased": headline(debiased),
        "headline_biased": headline(biased),
    }
    if stats and permutations > 0:
        out["p_values"] = debiased.p_values.tolist()
        out["baseline"] = debiased.baseline.tolist()
    return out


def _headline_cells(group: dict, same_family: bool) -> list[tuple[int, int]]:
    """The cells of the first pair's matrix that enter its headline number."""
    first = group["pairs"][0]
    m = torch.tensor(first["debiased"])
    if same_family:
        return [(i, first["cols"].index(name)) for i, name in enumerate(first["rows"])]
    rows = [(i, int(m[i].argmax())) for i in range(m.shape[0])]
    cols = [(int(m[:, j].argmax()), j) for j in range(m.shape[1])]
    return sorted(set(rows + cols))


def _t_interval(values: list[float]) -> list[float] | None:
    """95% t-interval of the mean over seed pairs (None for a single pair)."""
    if len(values) < 2:
        return None
    from scipy.stats import t

    stat = mean_std(values)
    half = t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1) * stat["std"] / len(values) ** 0.5
    return [stat["mean"] - half, stat["mean"] + half]


def cka_study(
    probes: dict[str, list[dict[str, Tensor]]], permutations: int, seed: int, progress: bool
) -> dict:
    """Every comparison of :func:`model_pairs`.

    Args:
        probes: family → per seed ``{layer: Tensor[n_test, d]}``.

    Returns:
        ``{"within": {family: group}, "between": {"a-b": group}, "statistic": text}``;
        a group has ``pairs`` (per pair of models: matrices, headlines, and for the first
        pair p-values and shuffled baselines), ``headline_debiased``/``headline_biased`` (mean ± std
        over pairs), and ``statistics``: ``p_value`` (the largest permutation p-value among
        the first pair's headline cells) and ``ci`` (95% t-interval of the debiased headline
        over pairs).
    """
    families = list(probes)
    seeds = min(len(v) for v in probes.values())
    comparisons = model_pairs(families, seeds)
    total = sum(len(p) for p in comparisons.values())
    bar = tqdm(total=total, desc="CKA", unit="pair", disable=not progress)
    out = {"within": {}, "between": {}}
    for name, pairs in comparisons.items():
        a, b = (name, name) if name in probes else name.split("-")
        same = a == b
        group = {"pairs": []}
        for k, (i, j) in enumerate(pairs):
            result = compare(probes[a][i], probes[b][j], same, k == 0, permutations, seed)
            group["pairs"].append({"a": f"{a}{i}", "b": f"{b}{j}", **result})
            bar.update(1)
        for kind in ("debiased", "biased"):
            group[f"headline_{kind}"] = mean_std([p[f"headline_{kind}"] for p in group["pairs"]])
        first = group["pairs"][0]
        cells = _headline_cells(group, same)
        p_values = first.get("p_values")
        group["statistics"] = {
            "p_value": max(p_values[i][j] for i, j in cells) if p_values else None,
            "ci": _t_interval(group["headline_debiased"]["values"]),
        }
        out["within" if same else "between"][name] = group
    bar.close()
    out["statistic"] = (
        "Linear CKA on the probed test-set states, debiased (unbiased HSIC) and biased. "
        "Headline per pair of models: between seeds of one family, the mean same-layer CKA; "
        "between families, the symmetric best-match CKA. Tables give mean ± std over seed "
        "pairs; p is the largest permutation p-value (debiased, "
        f"{permutations} permutations) among the headline cells of the first pair; CI is "
        "the 95% t-interval of the debiased headline over seed pairs."
    )
    return out
