"""The report states no more than the run shows: each family's real epochs, wall time summed
over every invocation, CKA intervals inside [0, 1] with their method, and for every finding
its sample sizes and the smallest p-value its test can reach."""

import pytest

from benchmarks.inr_classification import findings, report
from benchmarks.inr_classification.similarity import t_interval
from benchmarks.inr_classification.timings import InvocationTimes


def setup_results(invocations: list[dict], timings: dict) -> dict:
    runs = {"gmn": [{"key": {"epochs": 60}}] * 2, "mlp": [{"key": {"epochs": 10}}] * 2}
    return {
        "command": "python -m benchmarks.inr_classification", "families": ["gmn", "mlp"],
        "runs": runs, "seeds": [0, 1], "config": {"epochs": None, "device": "cpu"},
        "data": {"description": "digits", "n_train": 7, "n_val": 1, "n_test": 2,
                 "num_classes": 10, "inr_description": "SIREN"},
        "versions": {"gmn": "0.1"}, "timings": timings, "invocations": invocations,
    }


def test_setup_gives_each_familys_epochs():
    text = "\n".join(report._setup_section(setup_results(
        [{"status": "completed", "seconds": 5.0}], {"data": 1.0, "train": 4.0, "total": 5.0})))
    assert "epochs: gmn 60, mlp 10;" in text
    assert "epochs: None" not in text and "epochs: 10;" not in text


def test_wall_time_is_summed_over_every_invocation(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with InvocationTimes(tmp_path) as first:
            first.begin("data")
            first.begin("train")
            first.add("train/gmn/seed0", 2.0)
            raise KeyboardInterrupt  # Ctrl-C inside a stage: its time still counts
    interrupted = first.now["seconds"]
    assert interrupted["train/gmn/seed0"] == 2.0 and interrupted["train"] > 0
    with InvocationTimes(tmp_path) as second:
        second.begin("train")
        second.add("train/gmn/seed0", 1.0)
        second.end()
        summed = second.summed()
        now = dict(second.now["seconds"])
    assert summed["train/gmn/seed0"] == 3.0
    for stage in ("data", "train", "total"):
        assert summed[stage] == pytest.approx(interrupted.get(stage, 0) + now.get(stage, 0))
    assert [i["status"] for i in second.invocations] == ["interrupted", "completed"]
    third = InvocationTimes(tmp_path)  # what a killed invocation would leave: "running"
    third.save()
    fourth = InvocationTimes(tmp_path)
    assert [i["status"] for i in fourth.invocations] == ["interrupted", "completed", "running",
                                                         "running"]
    results = setup_results(
        [{"status": i["status"], "seconds": i["seconds"]["total"]} for i in fourth.invocations],
        fourth.summed())
    line = next(x for x in report._setup_section(results) if "wall time" in x)
    assert "summed over 4 invocations" in line
    assert "earlier ones: 1 interrupted, 1 completed, 1 killed" in line
    assert f"total {fourth.summed()['total']:.0f} s" in line


def test_a_damaged_timing_record_is_named_and_counting_restarts(tmp_path):
    (tmp_path / "timings.json").write_text("{not json")
    with pytest.warns(UserWarning, match="timings.json"):
        clock = InvocationTimes(tmp_path)
    assert clock.invocations == [clock.now]


def test_cka_interval_is_the_t_interval_clipped_to_the_range_of_cka():
    from scipy import stats

    values = [0.2, 0.5, 0.9]  # three pairs: t with 2 degrees of freedom is wide
    low, high = stats.t.interval(0.95, 2, loc=stats.tmean(values), scale=stats.sem(values))
    interval = t_interval(values)
    assert low < 0 < 1 < high  # the raw interval leaves [0, 1]
    assert (interval["low"], interval["high"]) == (0.0, 1.0)
    assert interval["clipped"] == pytest.approx([low, high])
    inside = t_interval([0.60, 0.62, 0.61])
    expected = stats.t.interval(0.95, 2, loc=0.61, scale=stats.sem([0.60, 0.62, 0.61]))
    assert (inside["low"], inside["high"]) == pytest.approx(expected)
    assert inside["clipped"] is None
    assert t_interval([0.5]) is None
    assert report._interval(interval) == "[0.000†, 1.000†]"
    assert report._interval(inside) == f"[{expected[0]:.3f}, {expected[1]:.3f}]"


def test_every_finding_shows_its_n_and_the_smallest_p_it_can_reach():
    one_pair = findings.seed_sensitivity({"gmn": [0.1], "mlp": [0.9], "cnn": [0.9]})
    text = report._finding_evidence(one_pair)
    assert "n = 1 and 1 seed pairs" in text and "smallest reachable p 0.500" in text
    assert "cannot reach p ≤ 0.05" in text  # two seeds can never reproduce a CKA claim
    three = findings.seed_sensitivity({"gmn": [0.1, 0.2, 0.3], "mlp": [0.9] * 3,
                                       "cnn": [0.9] * 3})
    assert three["verdict"] == "reproduced"
    assert "cannot reach" not in report._finding_evidence(three)
    lucky = {"n": 80, "only_a": 1, "both_wrong": 9}
    only = findings.gmn_only_samples({"gmn-mlp": [lucky], "gmn-cnn": [lucky]}, 10)
    text = report._finding_evidence(only)
    assert "1 of n = 80" in text and "of the 10 the image model misses" in text
    assert "p = 0.651" in text and "smallest reachable 1.0e-10" in text
    ensemble = findings.complementarity({"pairings": [
        {"mixed": "cnn0+gmn0", "same": "cnn0+cnn1", "mixed_accuracy": 0.9,
         "same_accuracy": 0.88, "difference": 0.02, "mcnemar_p": 0.25, "n": 80,
         "discordant": 3}]})
    text = report._finding_evidence(ensemble)
    assert "disagree on 3 of n = 80" in text and "smallest reachable p 0.250" in text
    assert "cannot reach p ≤ 0.05" in text
