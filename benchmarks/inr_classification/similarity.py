"""Stage "cka": layer × layer CKA between seeds of a family and between families.

Every pair of trained models is streamed once over the test set (``probes.stream_pair``):
one grid of exact accumulators gives the debiased and the biased linear CKA matrices of
all test samples (and, with ``--procrustes``, the orthogonal Procrustes matrix), in memory
that does not grow with the number of test samples. Each comparison (one family against
itself, or two families) is summarised by a headline number per pair of models:

* between seeds of one family: the mean same-layer CKA (each layer paired with the layer
  of the same name);
* between two families: the symmetric best-match CKA (each layer's highest CKA with any
  layer of the other model, averaged over both models' layers).

The first pair of each comparison also gets a permutation-test p-value and the mean CKA
of shuffled rows (the value unpaired samples give) for every cell, on the debiased
estimator (``--cka-permutations``). A permutation test needs the samples themselves: it
runs on the states of the first ``--cka-permutation-samples`` test samples (all of them
when there are no more), kept during the same pass. The confidence interval of each
headline is taken over seed pairs (a Student-t interval of the mean), the variation that
the paper's claims are about, clipped to [0, 1], the range of CKA (:func:`cka_statistics`).
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .analysis import best_match_mean, mean_std, same_layer_mean
from .config import BenchmarkConfig
from .probes import StreamedPair, TrainedModel, stream_pair

CONFIDENCE = 0.95


def model_pairs(families: list[str], seeds: int) -> dict[str, list[tuple[int, int]]]:
    """Comparison name → seed pairs: "gmn" → (i, j) with i < j; "gmn-mlp" → (i, i).

    Both give S pairs for S = 3 seeds, each model in two of them at most, so the per-pair
    values of two comparisons can be set against each other by a permutation test."""
    pairs = {f: list(itertools.combinations(range(seeds), 2)) for f in families}
    for a, b in itertools.combinations(families, 2):
        pairs[f"{a}-{b}"] = [(i, i) for i in range(seeds)]
    return pairs


def compare(pair: StreamedPair, same_family: bool, config: BenchmarkConfig) -> dict:
    """Debiased and biased CKA matrices of two models ``[rows, cols]`` over all test samples
    and their headlines; p-values and shuffled baselines on ``pair.samples`` when they were
    kept; the Procrustes matrix and headline when it was computed."""
    from gmn.cka import cka_matrix

    def headline(values: Tensor) -> float:  # layers matched by name, never by position
        if same_family:
            return same_layer_mean(values, pair.rows, pair.cols)
        return best_match_mean(values)

    out = {"rows": pair.rows, "cols": pair.cols}
    for kind in ("debiased", "biased"):
        values = getattr(pair, kind)
        out[kind], out[f"headline_{kind}"] = values.tolist(), headline(values)
    if pair.samples is not None:
        tested = cka_matrix(*pair.samples, debiased=True, permutations=config.cka_permutations,
                            seed=config.seed)
        out["p_values"], out["baseline"] = tested.p_values.tolist(), tested.baseline.tolist()
    if pair.procrustes is not None:
        values = pair.procrustes
        out["procrustes"], out["headline_procrustes"] = values.tolist(), headline(values)
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


def t_interval(values: list[float]) -> dict | None:
    """95% Student-t interval of the mean of ``values`` (t with n − 1 degrees of freedom),
    clipped to [0, 1], the range of CKA: ``{"low", "high", "clipped"}`` (``clipped``: the
    bounds as computed, when one was outside), or None for a single value."""
    if len(values) < 2:
        return None
    from scipy.stats import t

    stat = mean_std(values)
    half = t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1) * stat["std"] / len(values) ** 0.5
    low, high = stat["mean"] - half, stat["mean"] + half
    return {"low": max(low, 0.0), "high": min(high, 1.0),
            "clipped": [low, high] if low < 0 or high > 1 else None}


def cka_statistics(study: dict, config: BenchmarkConfig, n_test: int) -> None:
    """(Re)write each group's ``statistics`` and the study's ``statistic`` text, in place:
    ``p_value``, the largest permutation p-value among the first pair's headline cells, and
    ``ci``, :func:`t_interval` of the debiased headline over seed pairs. Applied to a cached
    study too, so its statistics are always today's."""
    for kind in ("within", "between"):
        for group in study[kind].values():
            p_values = group["pairs"][0].get("p_values")
            cells = _headline_cells(group, kind == "within")
            group["statistics"] = {
                "p_value": max(p_values[i][j] for i, j in cells) if p_values else None,
                "ci": t_interval(group["headline_debiased"]["values"]),
            }
    tested = config.cka_permutation_samples if config.cka_permutations > 0 else 0
    subset = f", on the first {tested} of {n_test} test samples" if 0 < tested < n_test else ""
    study["statistic"] = (
        "Linear CKA on the probed test-set states, debiased (unbiased HSIC) and biased. "
        "Headline per pair of models: between seeds of one family, the mean same-layer CKA; "
        "between families, the symmetric best-match CKA. Tables give mean ± std over seed "
        "pairs; p is the largest permutation p-value (debiased, "
        f"{config.cka_permutations} permutations{subset}) among the headline cells of the "
        "first pair, so the smallest p it can reach is 1/(permutations + 1); CI is the 95% "
        "Student-t interval of the mean debiased headline over the seed pairs (t with "
        "pairs − 1 degrees of freedom; pairs that share a model are not independent, so it "
        "is a guide, not an exact interval), clipped to [0, 1], the range of CKA (a clipped "
        "bound is marked †)."
    )


def cka_study(models: dict[str, list[TrainedModel]], config: BenchmarkConfig) -> dict:
    """Every comparison of :func:`model_pairs`.

    Args:
        models: family → per seed the trained model, its probed layers and test set.
        config: ``cka_permutations``, ``cka_permutation_samples``, ``seed``, ``procrustes``,
            ``device``, ``progress``.

    Returns:
        ``{"within": {family: group}, "between": {"a-b": group}, "statistic": text}``;
        a group has ``pairs`` (per pair of models: matrices, headlines, and for the first
        pair p-values and shuffled baselines), ``headline_debiased``/``headline_biased``
        (and ``headline_procrustes``) (mean ± std over pairs), and ``statistics``:
        ``p_value`` and ``ci`` (:func:`cka_statistics`).
    """
    families = list(models)
    seeds = min(len(v) for v in models.values())
    comparisons = model_pairs(families, seeds)
    total = sum(len(p) for p in comparisons.values())
    bar = tqdm(total=total, desc="CKA", unit="pair", disable=not config.progress)
    kinds = ("debiased", "biased", *(("procrustes",) if config.procrustes else ()))
    tested = config.cka_permutation_samples if config.cka_permutations > 0 else 0
    out = {"within": {}, "between": {}}
    for name, pairs in comparisons.items():
        a, b = (name, name) if name in models else name.split("-")
        same = a == b
        group = {"pairs": []}
        for k, (i, j) in enumerate(pairs):
            pair = stream_pair(models[a][i], models[b][j], tested if k == 0 else 0,
                               config.procrustes, config.device)
            group["pairs"].append({"a": f"{a}{i}", "b": f"{b}{j}", **compare(pair, same, config)})
            bar.update(1)
        for kind in kinds:
            group[f"headline_{kind}"] = mean_std([p[f"headline_{kind}"] for p in group["pairs"]])
        out["within" if same else "between"][name] = group
    bar.close()
    cka_statistics(out, config, len(next(iter(models.values()))[0].test))
    return out
