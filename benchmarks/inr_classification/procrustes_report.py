"""Optional report section (``--procrustes``): do the CKA findings hold under Procrustes too?

The representation-similarity claims should not depend on one index. For every comparison of
:func:`similarity.model_pairs` the CKA stage also computes, from the same streamed grid, the
orthogonal Procrustes similarity (``‖XᵀY‖_*`` of centred, unit-norm states: 1 = equal up to
rotation, translation and scale; ``gmn.cka.CKAGrid.procrustes``) with the same headline rule
as CKA (mean same-layer value between seeds, symmetric best match between families). This
module collects those headlines, runs the same verdict functions
(``findings.py``) on both indices, and states whether each finding holds under both. It
also counts the first pair's significant CKA cells before and after Holm's correction for
testing a whole layer × layer matrix.
"""

from __future__ import annotations

import torch

from .findings import ALPHA, gmn_image_dissimilarity, seed_sensitivity


def procrustes_study(cka: dict) -> dict:
    """Procrustes headline values (mean ± std over pairs) per comparison of a CKA study made
    with ``--procrustes``: ``{"within": {f: stats}, "between": {"a-b": stats}}``."""
    return {
        kind: {name: group["headline_procrustes"] for name, group in cka[kind].items()}
        for kind in ("within", "between")
    }


def _verdicts(within: dict[str, list[float]], between: dict[str, list[float]]) -> list[dict]:
    verdicts = []
    if {"gmn", "mlp", "cnn"} <= set(within):
        verdicts.append(seed_sensitivity(within))
    if {"gmn-mlp", "gmn-cnn", "mlp-cnn"} <= set(between):
        verdicts.append(gmn_image_dissimilarity(between))
    return verdicts


def findings_under_both(cka: dict, procrustes: dict) -> list[dict]:
    """Each similarity finding's verdict under debiased CKA and under Procrustes."""

    def values(group: dict, key: str) -> dict[str, list[float]]:
        return {
            name: stats[key]["values"] if key else stats["values"] for name, stats in group.items()
        }

    under_cka = _verdicts(
        values(cka["within"], "headline_debiased"), values(cka["between"], "headline_debiased")
    )
    under_procrustes = _verdicts(
        values(procrustes["within"], ""), values(procrustes["between"], "")
    )
    return [
        {
            "claim": c["claim"],
            "cka": c["verdict"],
            "procrustes": p["verdict"],
            "holds_under_both": c["verdict"] == p["verdict"] == "reproduced",
        }
        for c, p in zip(under_cka, under_procrustes)
    ]


def holm_counts(cka: dict) -> dict[str, dict]:
    """Per comparison: cells of the first pair's debiased CKA matrix with p ≤ ALPHA, raw and
    after Holm's correction over the matrix."""
    from gmn.cka import adjust_p_values

    counts = {}
    for group in (cka["within"], cka["between"]):
        for name, comparison in group.items():
            p_values = comparison["pairs"][0].get("p_values")
            if p_values is None:
                continue
            raw = torch.tensor(p_values, dtype=torch.float64)
            adjusted = adjust_p_values(raw, "holm")
            counts[name] = {
                "cells": raw.numel(),
                "raw": int((raw <= ALPHA).sum()),
                "holm": int((adjusted <= ALPHA).sum()),
            }
    return counts


def render_procrustes_section(cka: dict, procrustes: dict) -> str:
    """Markdown: Procrustes against CKA headlines, the findings under both, Holm counts."""
    lines = [
        "",
        "## Beyond CKA: orthogonal Procrustes",
        "",
        "Procrustes similarity ‖XᵀY‖_* of centred, unit-norm test-set states (1: equal up to "
        "rotation, translation and scale), with CKA's headline rule. Mean ± std over seed pairs.",
        "",
        "| comparison | debiased CKA | Procrustes |",
        "| --- | --- | --- |",
    ]
    for kind in ("within", "between"):
        for name, stats in procrustes[kind].items():
            c = cka[kind][name]["headline_debiased"]
            lines.append(
                f"| {name} | {c['mean']:.3f} ± {c['std']:.3f} | "
                f"{stats['mean']:.3f} ± {stats['std']:.3f} |"
            )
    findings = findings_under_both(cka, procrustes)
    if findings:
        lines += [
            "",
            "| finding | CKA | Procrustes | holds under both |",
            "| --- | --- | --- | --- |",
        ]
        for f in findings:
            both = "yes" if f["holds_under_both"] else "no"
            lines.append(f"| {f['claim']} | {f['cka']} | {f['procrustes']} | {both} |")
    counts = holm_counts(cka)
    if counts:
        lines += [
            "",
            f"Cells of the first pair's debiased CKA matrix with permutation p ≤ {ALPHA}, raw "
            "and after Holm's correction for testing every cell of the matrix. With P "
            "permutations no p-value is below 1/(P+1), so Holm over m cells can reject only "
            "when 1/(P+1) ≤ α/m: large matrices need more permutations (--cka-permutations).",
            "",
            "| comparison | cells | p ≤ α raw | p ≤ α Holm |",
            "| --- | --- | --- | --- |",
        ]
        for name, c in counts.items():
            lines.append(f"| {name} | {c['cells']} | {c['raw']} | {c['holm']} |")
    return "\n".join(lines) + "\n"
