"""Statistics of the study that need only tensors: accuracy over seeds, prediction overlap,
ensembles, CKA headline numbers, and a permutation test for differences of means.

Every function takes plain tensors or floats and returns plain Python numbers, so the
results can be written to ``results.json`` as they are.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor


def mean_std(values: list[float]) -> dict:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value)."""
    if not values:
        raise ValueError("mean_std needs at least one value")
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return {"mean": mean, "std": math.sqrt(var), "n": n, "values": list(values)}


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value: are the discordant samples split 50/50?

    ``only_a`` samples are right only for model A, ``only_b`` only for model B.
    """
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def binomial_tail(k: int, m: int, p: float) -> float:
    """P(K ≥ k) for K ~ Binomial(m, p), exactly: the one-sided p-value of k successes in m
    trials against a success rate of p."""
    if not 0 <= k <= m:
        raise ValueError(f"binomial_tail needs 0 <= k <= m, got k={k}, m={m}")
    return min(1.0, sum(math.comb(m, i) * p**i * (1 - p) ** (m - i) for i in range(k, m + 1)))


def prediction_overlap(pred_a: Tensor, pred_b: Tensor, labels: Tensor) -> dict:
    """Split test samples by which of two models classifies them correctly.

    Args:
        pred_a, pred_b: [n] predicted classes of models A and B.
        labels: [n] true classes.

    Returns:
        counts ``both_right``, ``only_a``, ``only_b``, ``both_wrong``, ``n``, and the
        exact McNemar p-value of ``only_a`` against ``only_b``.
    """
    if not (pred_a.shape == pred_b.shape == labels.shape) or labels.dim() != 1:
        raise ValueError(
            "predictions and labels must be [n] tensors of one length, got "
            f"{tuple(pred_a.shape)}, {tuple(pred_b.shape)}, {tuple(labels.shape)}"
        )
    right_a, right_b = pred_a == labels, pred_b == labels
    only_a = int((right_a & ~right_b).sum())
    only_b = int((~right_a & right_b).sum())
    return {
        "both_right": int((right_a & right_b).sum()),
        "only_a": only_a,
        "only_b": only_b,
        "both_wrong": int((~right_a & ~right_b).sum()),
        "n": int(labels.numel()),
        "mcnemar_p": mcnemar_p(only_a, only_b),
    }


def ensemble_predictions(probs: list[Tensor]) -> Tensor:
    """Classes predicted by averaging class probabilities: list of [n, C] → [n]."""
    return torch.stack(probs).mean(0).argmax(1)


def ensemble_study(probs: dict[str, list[Tensor]], labels: Tensor, base: str, other: str) -> dict:
    """Does adding a model of family ``other`` to one of ``base`` beat adding another ``base`` seed?

    For every seed i of ``base`` (with S ≥ 2 seeds) the pairing compares the ensemble
    ``base_i + other_i`` with ``base_i + base_{i+1 mod S}`` on the same samples (an exact
    McNemar test on the samples where the two ensembles disagree).

    Args:
        probs: family → list over seeds of [n, C] class probabilities.
        labels: [n] true classes.

    Returns:
        per-pairing accuracies, the difference (mixed − same), McNemar p-values, the number
        of test samples ``n`` and of samples where the two ensembles disagree
        (``discordant``), plus the mean ± std of each ensemble's accuracy.
    """
    seeds = len(probs[base])
    if seeds < 2 or len(probs[other]) < seeds:
        raise ValueError(
            f"the ensemble study needs ≥ 2 seeds of {base!r} and as many of {other!r}; "
            f"got {len(probs[base])} and {len(probs[other])}"
        )
    pairings = []
    for i in range(seeds):
        j = (i + 1) % seeds
        mixed = ensemble_predictions([probs[base][i], probs[other][i]])
        same = ensemble_predictions([probs[base][i], probs[base][j]])
        overlap = prediction_overlap(mixed, same, labels)
        discordant = overlap["only_a"] + overlap["only_b"]
        acc_mixed = float((mixed == labels).float().mean())
        acc_same = float((same == labels).float().mean())
        pairings.append(
            {
                "mixed": f"{base}{i}+{other}{i}",
                "same": f"{base}{i}+{base}{j}",
                "mixed_accuracy": acc_mixed,
                "same_accuracy": acc_same,
                "difference": acc_mixed - acc_same,
                "mcnemar_p": overlap["mcnemar_p"],
                "n": overlap["n"],
                "discordant": discordant,
            }
        )
    return {
        "base": base,
        "other": other,
        "pairings": pairings,
        "mixed_accuracy": mean_std([p["mixed_accuracy"] for p in pairings]),
        "same_accuracy": mean_std([p["same_accuracy"] for p in pairings]),
    }


def diagonal_mean(matrix: Tensor) -> float:
    """Mean same-layer CKA of two models of one architecture: mean of the diagonal."""
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"diagonal_mean needs a square matrix, got {tuple(matrix.shape)}")
    return float(matrix.diagonal().double().mean())


def same_layer_mean(matrix: Tensor, rows: list[str], cols: list[str]) -> float:
    """Mean CKA of each layer with the layer of the same name in the other model: the
    columns are put in the order of ``rows`` by name before :func:`diagonal_mean`, so the
    order the layers were stored in cannot pair two different layers."""
    if len(set(rows)) != len(rows) or sorted(rows) != sorted(cols):
        raise ValueError(f"same-layer CKA needs the same layer names on both sides, got "
                         f"{rows} and {cols}")
    if tuple(matrix.shape) != (len(rows), len(cols)):
        raise ValueError(f"a {tuple(matrix.shape)} matrix for {len(rows)}×{len(cols)} names")
    return diagonal_mean(matrix[:, [cols.index(name) for name in rows]])


def best_match_mean(matrix: Tensor) -> float:
    """Symmetric best-match CKA of two models with different layers.

    The mean over the layers of both models of each layer's highest CKA with any layer
    of the other model: (mean of row maxima + mean of column maxima) / 2.
    """
    if matrix.dim() != 2 or matrix.numel() == 0:
        raise ValueError(f"best_match_mean needs a non-empty matrix, got {tuple(matrix.shape)}")
    m = matrix.double()
    return float((m.max(1).values.mean() + m.max(0).values.mean()) / 2)


def smallest_permutation_p(n_a: int, n_b: int, max_exact: int = 20_000) -> float:
    """The smallest p-value :func:`permutation_test_mean_difference` can give for samples
    of ``n_a`` and ``n_b`` values: one over the number of relabellings it counts."""
    exact = math.comb(n_a + n_b, n_a)
    return 1 / exact if exact <= max_exact else 1 / (max_exact + 1)


def permutation_test_mean_difference(
    a: list[float],
    b: list[float],
    alternative: str = "less",
    max_exact: int = 20_000,
    seed: int = 0,
) -> float:
    """p-value of the difference of means of two small samples, by relabelling.

    ``alternative="less"`` tests mean(a) < mean(b); ``"two-sided"`` tests |difference|.
    Exact over all relabellings when there are at most ``max_exact`` of them, otherwise
    from ``max_exact`` seeded random relabellings. With 3 values a side the smallest
    possible one-sided p is 1/20 = 0.05.
    """
    if not a or not b:
        raise ValueError("both samples need at least one value")
    if alternative not in ("less", "two-sided"):
        raise ValueError(f"alternative must be 'less' or 'two-sided', got {alternative!r}")
    pooled, k = list(a) + list(b), len(a)

    def statistic(indices) -> float:
        chosen = set(indices)
        first = [pooled[i] for i in indices]
        second = [v for i, v in enumerate(pooled) if i not in chosen]
        diff = sum(first) / len(first) - sum(second) / len(second)
        return diff if alternative == "less" else abs(diff)

    observed = statistic(range(k))
    if math.comb(len(pooled), k) <= max_exact:
        relabellings = list(itertools.combinations(range(len(pooled)), k))
    else:
        generator = torch.Generator().manual_seed(seed)
        relabellings = [
            torch.randperm(len(pooled), generator=generator)[:k].tolist() for _ in range(max_exact)
        ]
        relabellings.append(list(range(k)))
    stats = [statistic(idx) for idx in relabellings]
    tol = 1e-12
    if alternative == "less":
        extreme = sum(s <= observed + tol for s in stats)
    else:
        extreme = sum(s >= observed - tol for s in stats)
    return extreme / len(stats)
