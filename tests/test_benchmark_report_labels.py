"""The report says what each GMN sees: ``gmn_probe`` is labelled in every table as seeing
function samples on the pixel grid, and the Findings name the weights-only ``gmn``."""

from benchmarks.inr_classification import findings, report
from benchmarks.inr_classification.config import FAMILY_DESCRIPTIONS


def finding(claim: str) -> dict:
    overlap = {"n": 10, "only_a": 1, "both_wrong": 1}
    only = findings.gmn_only_samples({"gmn-mlp": [overlap], "gmn-cnn": [overlap]}, 10)
    return {**only, "claim": claim}


def ensembles(other: str) -> dict:
    pairing = {"mixed": f"cnn0+{other}0", "same": "cnn0+cnn1", "mixed_accuracy": 0.9,
               "same_accuracy": 0.8, "difference": 0.1, "mcnemar_p": 0.5}
    stat = {"mean": 0.9, "std": 0.0, "values": [0.9]}
    return {"base": "cnn", "other": other, "pairings": [pairing], "mixed_accuracy": stat,
            "same_accuracy": stat}


def test_descriptions_say_what_each_gmn_sees():
    assert "alone" in FAMILY_DESCRIPTIONS["gmn"] and "no function samples" in (
        FAMILY_DESCRIPTIONS["gmn"])
    assert "pixel grid" in FAMILY_DESCRIPTIONS["gmn_probe"]
    assert "image" in FAMILY_DESCRIPTIONS["gmn_probe"]


def test_probe_family_is_labelled_in_tables_and_findings():
    results = {
        "findings": [finding("weights claim")],
        "probe_findings": [finding("probe claim")],
        "ensembles": ensembles("gmn"),
        "probe_ensembles": ensembles("gmn_probe"),
        "overlap": {"gmn_probe-cnn": [{"n": 10, "both_right": 5, "only_a": 2, "only_b": 1,
                                        "both_wrong": 2, "mcnemar_p": 1.0}]},
        "comparisons": [{"a": "gmn", "b": "gmn_probe", "accuracy_difference": [0.0],
                         "mcnemar_p": [1.0], "verdict": "no significant difference"}],
        "figures": {},
        "data": {"setting": "independent initialisation"},
    }
    findings = "\n".join(report._findings_section(results))
    assert findings.count("— ❔ inconclusive (INRs of independent initialisation).") == 2
    assert FAMILY_DESCRIPTIONS["gmn"] in findings.split("### The same claims")[0]
    assert "weights claim" in findings.split("### The same claims")[0]
    assert "probe claim" in findings.split("### The same claims for `gmn_probe`")[1]
    for section in (report._overlap_section, report._ensemble_section,
                    report._beyond_section):
        text = "\n".join(section(results))
        assert report.PROBE_LABEL in text, section.__name__
        assert "`gmn_probe`" not in text  # never the bare name in a table
