"""The --procrustes report section: headlines, verdicts under both indices, Holm counts."""

import dataclasses

import pytest
import torch

from benchmarks.inr_classification.analysis import mean_std
from benchmarks.inr_classification.config import BenchmarkConfig
from benchmarks.inr_classification.procrustes_report import (
    findings_under_both,
    holm_counts,
    procrustes_study,
    render_procrustes_section,
)
from benchmarks.inr_classification.similarity import cka_study
from gmn.cka import adjust_p_values, procrustes_similarity
from tests.benchmark_models import LAYERS, in_memory, trained


def test_headlines_are_the_mean_same_layer_or_best_match_procrustes():
    config = dataclasses.replace(BenchmarkConfig(), cka_permutations=0, procrustes=True,
                                 progress=False)
    models = {"gmn": [trained(s, 60) for s in range(3)],
              "mlp": [trained(s, 60, width=8) for s in range(3, 6)]}
    study = procrustes_study(cka_study(models, config))
    states = {f: [in_memory(m) for m in ms] for f, ms in models.items()}

    def similarity(x, y):
        return torch.tensor([[float(procrustes_similarity(x[r], y[c])) for c in y] for r in x],
                            dtype=torch.float64)

    within = [
        sum(float(procrustes_similarity(states["gmn"][i][k], states["gmn"][j][k])) for k in LAYERS)
        / 3
        for i, j in [(0, 1), (0, 2), (1, 2)]
    ]
    assert study["within"]["gmn"]["values"] == pytest.approx(within, abs=1e-9)
    between = []
    for i in range(3):
        m = similarity(states["gmn"][i], states["mlp"][i])
        between.append((m.max(1).values.mean() + m.max(0).values.mean()).item() / 2)
    assert study["between"]["gmn-mlp"]["values"] == pytest.approx(between, abs=1e-9)


def fake_procrustes() -> dict:
    """Procrustes headlines of a study where GMN seeds differ much more from each other than
    MLP or CNN seeds do, and GMNs from image models more than MLPs from CNNs."""
    low, high = [0.3, 0.35, 0.32], [0.9, 0.92, 0.91]
    return {
        "within": {"gmn": mean_std(low), "mlp": mean_std(high), "cnn": mean_std(high)},
        "between": {"gmn-mlp": mean_std(low), "gmn-cnn": mean_std(low),
                    "mlp-cnn": mean_std(high)},
    }


def test_findings_are_judged_under_both_indices():
    procrustes = fake_procrustes()
    # a CKA study shaped like similarity.cka_study's, with the same per-pair values
    cka = {
        kind: {
            name: {
                "headline_debiased": stats,
                "pairs": [{"p_values": [[0.001, 0.04], [0.2, 0.01]]}],
            }
            for name, stats in procrustes[kind].items()
        }
        for kind in ("within", "between")
    }
    findings = findings_under_both(cka, procrustes)
    assert [f["cka"] for f in findings] == [f["procrustes"] for f in findings]
    assert findings[0]["claim"].startswith("Random initialisation")
    assert findings[0]["holds_under_both"] == (findings[0]["cka"] == "reproduced")
    counts = holm_counts(cka)
    adjusted = adjust_p_values(torch.tensor([[0.001, 0.04], [0.2, 0.01]]), "holm")
    assert counts["gmn"] == {"cells": 4, "raw": 3, "holm": int((adjusted <= 0.05).sum())}
    section = render_procrustes_section(cka, procrustes)
    assert "## Beyond CKA: orthogonal Procrustes" in section
    assert "| gmn-mlp |" in section and "holds under both" in section
