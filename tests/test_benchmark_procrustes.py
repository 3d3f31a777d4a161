"""The --procrustes report section: headlines, verdicts under both indices, Holm counts."""

import torch

from benchmarks.inr_classification.procrustes_report import (
    findings_under_both,
    holm_counts,
    procrustes_study,
    render_procrustes_section,
)
from gmn.cka import adjust_p_values, procrustes_similarity


def fake_probes(n=60):
    g = torch.Generator().manual_seed(0)
    shared = torch.randn(n, 6, generator=g, dtype=torch.float64)

    def model(noise):
        first = shared + noise * torch.randn(n, 6, generator=g, dtype=torch.float64)
        return {"l0": first, "l1": torch.tanh(first @ torch.randn(6, 4, generator=g).double())}

    # GMN seeds differ much more from each other than MLP or CNN seeds do
    return {
        "gmn": [model(5.0) for _ in range(3)],
        "mlp": [model(0.1) for _ in range(3)],
        "cnn": [model(0.1) for _ in range(3)],
    }


def test_headlines_are_the_mean_same_layer_or_best_match_procrustes():
    probes = fake_probes()
    study = procrustes_study(probes)
    gmn_pairs = [(0, 1), (0, 2), (1, 2)]
    expected = [
        sum(
            float(procrustes_similarity(probes["gmn"][i][k], probes["gmn"][j][k]))
            for k in ("l0", "l1")
        )
        / 2
        for i, j in gmn_pairs
    ]
    assert study["within"]["gmn"]["values"] == expected
    assert set(study["between"]) == {"gmn-mlp", "gmn-cnn", "mlp-cnn"}
    assert study["within"]["gmn"]["mean"] < study["within"]["mlp"]["mean"]


def test_findings_are_judged_under_both_indices():
    probes = fake_probes()
    procrustes = procrustes_study(probes)
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
