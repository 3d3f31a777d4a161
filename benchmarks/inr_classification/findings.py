"""Verdicts on the claims of Yeom & Lee (2025), computed from the measured numbers.

Each verdict is one of ``"reproduced"``, ``"contradicted"`` or ``"inconclusive"`` and
comes with the numbers and thresholds that decided it, the sample sizes ``n`` and the
smallest p-value each test can reach with them (a test whose smallest p is above
``ALPHA`` cannot reproduce a claim, whatever the data):

* a CKA claim "A is far lower than B" is reproduced when mean(B) − mean(A) ≥
  ``CKA_MARGIN`` (debiased CKA) and the permutation p-value of the per-seed-pair values
  is ≤ ``ALPHA``; contradicted when mean(A) ≥ mean(B); inconclusive otherwise;
* "some samples only the GMN gets right" is reproduced when, for every seed and image
  family, at least ``MIN_ONLY_FRACTION`` of the test samples are right only for the GMN
  *and* that is more than guessing gives: of the m samples the image model gets wrong, a
  uniform guess among C classes gets each right with probability 1/C, so the one-sided
  binomial p-value P(Binomial(m, 1/C) ≥ k) of the GMN's k must be ≤ ``ALPHA``;
  contradicted when no sample is, for every seed;
* "complementary" is reproduced when the GMN + CNN ensemble beats the CNN + CNN ensemble
  in every seed pairing with McNemar p ≤ ``ALPHA``; contradicted when it is worse in every
  pairing; inconclusive otherwise.
"""

from __future__ import annotations

from .analysis import (
    binomial_tail,
    mcnemar_p,
    permutation_test_mean_difference,
    smallest_permutation_p,
)

CKA_MARGIN = 0.1
ALPHA = 0.05
MIN_ONLY_FRACTION = 0.01


def _far_lower(name_a: str, a: list[float], name_b: str, b: list[float]) -> dict:
    """Test "A far lower than B" on per-seed-pair headline CKA values."""
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    p = permutation_test_mean_difference(a, b, alternative="less")
    if mean_b - mean_a >= CKA_MARGIN and p <= ALPHA:
        verdict = "reproduced"
    elif mean_a >= mean_b:
        verdict = "contradicted"
    else:
        verdict = "inconclusive"
    return {
        "lower": name_a,
        "higher": name_b,
        "mean_lower": mean_a,
        "mean_higher": mean_b,
        "difference": mean_b - mean_a,
        "p_value": p,
        "n_lower": len(a),
        "n_higher": len(b),
        "smallest_p": smallest_permutation_p(len(a), len(b)),
        "verdict": verdict,
    }


def _combine(parts: list[dict]) -> str:
    verdicts = {p["verdict"] for p in parts}
    if verdicts == {"reproduced"}:
        return "reproduced"
    if "contradicted" in verdicts:
        return "contradicted"
    return "inconclusive"


def _between(between: dict[str, list[float]], a: str, b: str) -> list[float]:
    """The values of the comparison of families ``a`` and ``b``, named "a-b" or "b-a"."""
    return between[f"{a}-{b}"] if f"{a}-{b}" in between else between[f"{b}-{a}"]


def seed_sensitivity(within: dict[str, list[float]], gmn: str = "gmn") -> dict:
    """GMN cross-seed CKA far lower than MLP's and CNN's. ``within``: family → pair values;
    ``gmn``: the GMN family the claim is tested on."""
    parts = [_far_lower(gmn, within[gmn], f, within[f]) for f in ("mlp", "cnn")]
    return {
        "claim": "Random initialisation changes GMN representations far more than MLP or CNN "
        "representations (GMN cross-seed CKA far lower).",
        "verdict": _combine(parts),
        "tests": parts,
    }


def gmn_image_dissimilarity(between: dict[str, list[float]], gmn: str = "gmn") -> dict:
    """GMN–MLP and GMN–CNN CKA far lower than MLP–CNN. ``between``: "a-b" → pair values."""
    parts = [
        _far_lower(f"{gmn}-{f}", _between(between, gmn, f), "mlp-cnn", between["mlp-cnn"])
        for f in ("mlp", "cnn")
    ]
    return {
        "claim": "CKA between a GMN and an MLP/CNN is far lower than between an MLP and a CNN.",
        "verdict": _combine(parts),
        "tests": parts,
    }


def beyond_guessing(overlap: dict, num_classes: int) -> dict:
    """The samples right only for model A (the GMN) of one :func:`analysis.prediction_overlap`,
    against a uniform guess among ``num_classes`` classes on the ``image_wrong`` samples
    model B gets wrong: ``p_value`` = P(Binomial(image_wrong, 1/C) ≥ only_gmn), and the
    ``smallest_p`` it can reach, (1/C)^image_wrong."""
    k, m = overlap["only_a"], overlap["only_a"] + overlap["both_wrong"]
    chance = 1 / num_classes
    return {
        "n": overlap["n"],
        "only_gmn": k,
        "image_wrong": m,
        "fraction": k / overlap["n"],
        "p_value": binomial_tail(k, m, chance),
        "smallest_p": binomial_tail(m, m, chance),
    }


def gmn_only_samples(overlaps: dict[str, list[dict]], num_classes: int, gmn: str = "gmn") -> dict:
    """Some samples only the GMN classifies correctly, more than guessing would. ``overlaps``:
    "GMN-x" → per-seed dicts from :func:`analysis.prediction_overlap` with the GMN family
    ``gmn`` as model A; ``num_classes``: C, the chance of a uniform guess is 1/C."""
    samples = {
        k: [beyond_guessing(o, num_classes) for o in overlaps[k]]
        for k in (f"{gmn}-mlp", f"{gmn}-cnn")
    }
    tests = [t for per_seed in samples.values() for t in per_seed]
    if all(t["fraction"] >= MIN_ONLY_FRACTION and t["p_value"] <= ALPHA for t in tests):
        verdict = "reproduced"
    elif all(t["only_gmn"] == 0 for t in tests):
        verdict = "contradicted"
    else:
        verdict = "inconclusive"
    return {
        "claim": "Some samples are classified correctly only by the GMN.",
        "verdict": verdict,
        "only_gmn": samples,
        "threshold": MIN_ONLY_FRACTION,
        "num_classes": num_classes,
    }


def complementarity(ensemble: dict) -> dict:
    """GMN + CNN beats CNN + CNN. ``ensemble``: output of :func:`analysis.ensemble_study`;
    each pairing gets the ``smallest_p`` McNemar's test can reach with its discordant
    samples."""
    pairings = [{**p, "smallest_p": mcnemar_p(p["discordant"], 0)} for p in ensemble["pairings"]]
    if all(p["difference"] > 0 and p["mcnemar_p"] <= ALPHA for p in pairings):
        verdict = "reproduced"
    elif all(p["difference"] < 0 for p in pairings):
        verdict = "contradicted"
    else:
        verdict = "inconclusive"
    return {
        "claim": "Representations from parameters complement those from pixels "
        "(GMN + CNN ensemble beats CNN + CNN).",
        "verdict": verdict,
        "pairings": pairings,
    }


def accuracy_comparison(name_a: str, name_b: str, overlaps: list[dict]) -> dict:
    """Beyond the paper: does family A classify the test set better than family B?

    ``overlaps`` holds one :func:`analysis.prediction_overlap` per seed (seed i of A against
    seed i of B). A family is called better only when it wins every seed with McNemar
    p ≤ ``ALPHA``.
    """
    diffs = [(o["only_a"] - o["only_b"]) / o["n"] for o in overlaps]
    significant = all(o["mcnemar_p"] <= ALPHA for o in overlaps)
    if significant and all(d > 0 for d in diffs):
        verdict = f"{name_a} better"
    elif significant and all(d < 0 for d in diffs):
        verdict = f"{name_b} better"
    else:
        verdict = "no significant difference"
    return {
        "a": name_a,
        "b": name_b,
        "accuracy_difference": diffs,
        "mcnemar_p": [o["mcnemar_p"] for o in overlaps],
        "verdict": verdict,
    }


def all_findings(
    within: dict, between: dict, overlaps: dict, ensemble: dict, num_classes: int,
    gmn: str = "gmn",
) -> list[dict]:
    """The four claims of the paper, in the paper's order, for the GMN family ``gmn``
    (``ensemble``: that family's :func:`analysis.ensemble_study` with the CNN;
    ``num_classes``: of the test labels)."""
    return [
        seed_sensitivity(within, gmn),
        gmn_image_dissimilarity(between, gmn),
        gmn_only_samples(overlaps, num_classes, gmn),
        complementarity(ensemble),
    ]
