"""Known answers for the benchmark's statistics and for the verdicts computed from them."""

import math

import pytest
import torch

from benchmarks.inr_classification import findings
from benchmarks.inr_classification.analysis import (
    best_match_mean,
    binomial_tail,
    diagonal_mean,
    ensemble_study,
    mcnemar_p,
    mean_std,
    permutation_test_mean_difference,
    prediction_overlap,
    smallest_permutation_p,
)


def test_mean_std_uses_sample_std():
    out = mean_std([1.0, 2.0, 3.0])
    assert out["mean"] == 2.0 and out["std"] == 1.0 and out["n"] == 3
    assert mean_std([0.5])["std"] == 0.0
    with pytest.raises(ValueError, match="at least one"):
        mean_std([])


def test_mcnemar_exact_binomial():
    assert mcnemar_p(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_p(1, 9) == pytest.approx(2 * 11 / 1024)
    assert mcnemar_p(9, 1) == mcnemar_p(1, 9)
    assert mcnemar_p(4, 4) == 1.0 and mcnemar_p(0, 0) == 1.0


def test_prediction_overlap_counts():
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    a = torch.tensor([0, 1, 0, 0, 0, 2])  # right on 0, 1, 4
    b = torch.tensor([0, 0, 2, 0, 1, 2])  # right on 0, 2
    out = prediction_overlap(a, b, labels)
    assert (out["both_right"], out["only_a"], out["only_b"], out["both_wrong"]) == (1, 2, 1, 2)
    assert out["n"] == 6 and out["mcnemar_p"] == 1.0
    with pytest.raises(ValueError, match="one length"):
        prediction_overlap(a, b[:3], labels)


def _one_hot(classes, num_classes=3, confidence=0.6):
    probs = torch.full((len(classes), num_classes), (1 - confidence) / (num_classes - 1))
    probs[torch.arange(len(classes)), torch.tensor(classes)] = confidence
    return probs


def test_ensemble_study_known_answer():
    labels = torch.tensor([0, 1, 2, 0])
    # both CNN seeds are wrong on sample 3 in the same way; the GMN is right there
    cnn = [_one_hot([0, 1, 2, 1], confidence=0.5), _one_hot([0, 1, 2, 1], confidence=0.5)]
    gmn = [_one_hot([0, 1, 2, 0], confidence=0.9), _one_hot([0, 1, 2, 0], confidence=0.9)]
    out = ensemble_study({"cnn": cnn, "gmn": gmn}, labels, base="cnn", other="gmn")
    assert [p["mixed_accuracy"] for p in out["pairings"]] == [1.0, 1.0]
    assert [p["same_accuracy"] for p in out["pairings"]] == [0.75, 0.75]
    assert out["pairings"][1]["same"] == "cnn1+cnn0"
    with pytest.raises(ValueError, match="2 seeds"):
        ensemble_study({"cnn": cnn[:1], "gmn": gmn}, labels, base="cnn", other="gmn")


def test_cka_headlines():
    m = torch.tensor([[0.9, 0.1], [0.2, 0.5]])
    assert diagonal_mean(m) == pytest.approx(0.7)
    # row maxima 0.9, 0.5; column maxima 0.9, 0.5
    assert best_match_mean(m) == pytest.approx(0.7)
    rect = torch.tensor([[0.1, 0.8, 0.3]])
    assert best_match_mean(rect) == pytest.approx((0.8 + (0.1 + 0.8 + 0.3) / 3) / 2)
    with pytest.raises(ValueError, match="square"):
        diagonal_mean(rect)


def test_permutation_test_known_answers():
    assert permutation_test_mean_difference([0, 0, 0], [1, 1, 1]) == pytest.approx(1 / 20)
    assert permutation_test_mean_difference([1, 1, 1], [0, 0, 0]) == 1.0
    two_sided = permutation_test_mean_difference([0, 0, 0], [1, 1, 1], alternative="two-sided")
    assert two_sided == pytest.approx(2 / 20)
    # above max_exact it samples, and stays close to the exact value
    a, b = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], [0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    exact = permutation_test_mean_difference(a, b)
    sampled = permutation_test_mean_difference(a, b, max_exact=500, seed=1)
    assert abs(exact - sampled) < 0.05 and exact < 0.05
    assert math.comb(12, 6) > 500


def test_findings_seed_sensitivity_verdicts():
    low, high = [0.2, 0.25, 0.3], [0.8, 0.85, 0.9]
    out = findings.seed_sensitivity({"gmn": low, "mlp": high, "cnn": high})
    assert out["verdict"] == "reproduced"
    assert out["tests"][0]["difference"] == pytest.approx(0.6)
    assert findings.seed_sensitivity({"gmn": high, "mlp": low, "cnn": high})["verdict"] == (
        "contradicted"
    )
    # lower, but by less than the margin
    close = [0.78, 0.83, 0.88]
    assert findings.seed_sensitivity({"gmn": close, "mlp": high, "cnn": high})["verdict"] == (
        "inconclusive"
    )
    # far lower, but only one pair each: a permutation test cannot reach ALPHA
    one = findings.seed_sensitivity({"gmn": [0.1], "mlp": [0.9], "cnn": [0.9]})
    assert one["verdict"] == "inconclusive"


def test_findings_overlap_and_complementarity():
    def overlap(only_a, n=100, both_wrong=0):
        return {"only_a": only_a, "n": n, "both_wrong": both_wrong}

    yes = {"gmn-mlp": [overlap(3), overlap(2)], "gmn-cnn": [overlap(2, both_wrong=1),
                                                            overlap(5)]}
    assert findings.gmn_only_samples(yes, 10)["verdict"] == "reproduced"
    some = {"gmn-mlp": [overlap(3), overlap(0)], "gmn-cnn": [overlap(2), overlap(5)]}
    assert findings.gmn_only_samples(some, 10)["verdict"] == "inconclusive"
    none = {"gmn-mlp": [overlap(0)], "gmn-cnn": [overlap(0)]}
    assert findings.gmn_only_samples(none, 10)["verdict"] == "contradicted"

    def pairing(diff, p, discordant=20):
        return {"difference": diff, "mcnemar_p": p, "discordant": discordant}

    better = {"pairings": [pairing(0.02, 0.01), pairing(0.03, 0.001)]}
    assert findings.complementarity(better)["verdict"] == "reproduced"
    unsure = {"pairings": [pairing(0.02, 0.2), pairing(0.03, 0.001)]}
    assert findings.complementarity(unsure)["verdict"] == "inconclusive"
    worse = {"pairings": [pairing(-0.02, 0.2), pairing(-0.03, 0.001)]}
    assert findings.complementarity(worse)["verdict"] == "contradicted"


def test_only_gmn_samples_must_beat_guessing_whatever_the_test_set_size():
    # the run: a weak GMN on 80 test samples, right on 1 of the 10 samples each image
    # model misses (1.25 % of the test set, above MIN_ONLY_FRACTION): a uniform guess among
    # 10 classes gets 1 of 10 right with probability 0.65, so this is not evidence
    lucky = {"n": 80, "only_a": 1, "both_wrong": 9}
    weak = findings.gmn_only_samples({"gmn-mlp": [lucky] * 3, "gmn-cnn": [lucky] * 3}, 10)
    assert weak["verdict"] == "inconclusive"
    test = weak["only_gmn"]["gmn-mlp"][0]
    assert (test["n"], test["only_gmn"], test["image_wrong"]) == (80, 1, 10)
    assert test["p_value"] == pytest.approx(1 - 0.9**10)
    assert test["smallest_p"] == pytest.approx(0.1**10)
    # the same fraction of a large test set, with the GMN right on most of the image model's
    # errors, is far beyond guessing
    strong = {"n": 8000, "only_a": 100, "both_wrong": 50}
    assert findings.gmn_only_samples({"gmn-mlp": [strong], "gmn-cnn": [strong]}, 10)[
        "verdict"] == "reproduced"


def test_binomial_tail_matches_scipy():
    from scipy.stats import binom

    for k, m, p in ((0, 5, 0.1), (3, 10, 0.1), (10, 10, 0.5), (7, 40, 0.25), (0, 0, 0.1)):
        assert binomial_tail(k, m, p) == pytest.approx(binom.sf(k - 1, m, p), rel=1e-12, abs=0)
    with pytest.raises(ValueError, match="0 <= k <= m"):
        binomial_tail(4, 3, 0.5)


def test_smallest_reachable_p_is_what_a_perfect_separation_gives():
    for low, high in (([0.1], [0.9]), ([0.1, 0.2], [0.8, 0.9]),
                      ([0.1, 0.2, 0.3], [0.7, 0.8, 0.9])):
        separated = permutation_test_mean_difference(low, high)
        assert smallest_permutation_p(len(low), len(high)) == pytest.approx(separated)
        test = findings.seed_sensitivity({"gmn": low, "mlp": high, "cnn": high})["tests"][0]
        assert test["smallest_p"] == pytest.approx(separated)
        assert (test["n_lower"], test["n_higher"]) == (len(low), len(high))
    assert smallest_permutation_p(3, 3) == pytest.approx(0.05)  # 3 seeds: C(6, 3) = 20
    assert smallest_permutation_p(6, 6, max_exact=500) == pytest.approx(1 / 501)
    # McNemar: every discordant sample on one side is the most extreme split
    out = findings.complementarity({"pairings": [
        {"difference": 0.04, "mcnemar_p": mcnemar_p(4, 0), "discordant": 4}]})
    assert out["pairings"][0]["smallest_p"] == pytest.approx(mcnemar_p(4, 0)) == 0.125
    assert out["verdict"] == "inconclusive"


def test_accuracy_comparison_needs_every_seed_significant():
    wins = [{"only_a": 30, "only_b": 2, "n": 100, "mcnemar_p": 1e-6}] * 3
    out = findings.accuracy_comparison("gmn", "weight_mlp", wins)
    assert out["verdict"] == "gmn better"
    assert out["accuracy_difference"] == pytest.approx([0.28] * 3)
    losses = [{"only_a": 2, "only_b": 30, "n": 100, "mcnemar_p": 1e-6}] * 3
    assert (
        findings.accuracy_comparison("gmn", "weight_mlp", losses)["verdict"] == "weight_mlp better"
    )
    mixed = wins[:2] + [{"only_a": 5, "only_b": 4, "n": 100, "mcnemar_p": 1.0}]
    assert findings.accuracy_comparison("gmn", "weight_mlp", mixed)["verdict"] == (
        "no significant difference"
    )
