"""Stage "analysis": every number of ``results.json`` from the runs' test outputs and CKA."""

from __future__ import annotations

from torch import Tensor

from . import findings
from .analysis import ensemble_study, mean_std, prediction_overlap

BEYOND_PAPER = (
    ("gmn", "weight_mlp"),
    ("gmn", "gmn_noaug"),
    ("gmn", "gmn_probe"),
    ("gmn_probe", "weight_mlp"),
    ("gmn", "nfn_np"),
    ("vit", "cnn"),
)
PROBE_FAMILY = "gmn_probe"  # the paper's claims are also reported for it, separately


def overlaps(predictions: dict[str, list[Tensor]], labels: Tensor) -> dict[str, list[dict]]:
    """Prediction overlap of each GMN (``gmn``, and ``gmn_probe`` when trained) with each image
    family (seed i vs seed i), and of CNN seed i with CNN seed i + 1: how much a new
    initialisation alone changes."""
    seeds = len(predictions["cnn"])
    out = {
        f"{gmn}-{image}": [
            prediction_overlap(predictions[gmn][i], predictions[image][i], labels)
            for i in range(seeds)
        ]
        for gmn in ("gmn", PROBE_FAMILY)
        if gmn in predictions
        for image in ("mlp", "cnn", "vit")
        if image in predictions
    }
    out["cnn-cnn"] = [
        prediction_overlap(predictions["cnn"][i], predictions["cnn"][(i + 1) % seeds], labels)
        for i in range(seeds)
    ]
    return out


def cka_headlines(cka: dict) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per-pair debiased headline CKA of each within-family and between-family group."""
    within = {f: g["headline_debiased"]["values"] for f, g in cka["within"].items()}
    between = {k: g["headline_debiased"]["values"] for k, g in cka["between"].items()}
    return within, between


def assemble_results(
    runs: dict[str, list[dict]],
    outputs: dict[str, list[dict[str, Tensor]]],
    labels: Tensor,
    cka: dict,
) -> dict:
    """Accuracy, overlaps, ensembles, comparisons and findings.

    Args:
        runs: family → per seed result of :func:`training.train_family_seed`.
        outputs: family → per seed outputs (``probabilities`` [n, C], ``predictions`` [n]).
        labels: [n] test labels.
        cka: output of :func:`similarity.cka_study`.
    """
    predictions = {f: [o["predictions"] for o in per_seed] for f, per_seed in outputs.items()}
    probabilities = {f: [o["probabilities"] for o in per_seed] for f, per_seed in outputs.items()}
    for family, per_seed in predictions.items():
        for seed, pred in enumerate(per_seed):
            recomputed = float((pred == labels).double().mean())
            if abs(recomputed - runs[family][seed]["test_accuracy"]) > 1e-6:
                raise RuntimeError(
                    f"{family} seed {seed}: stored predictions give {recomputed:.4f}, the "
                    f"trainer reported {runs[family][seed]['test_accuracy']:.4f}"
                )
    num_classes = next(iter(probabilities.values()))[0].shape[1]
    overlap = overlaps(predictions, labels)
    ensembles = ensemble_study(probabilities, labels, base="cnn", other="gmn")
    within, between = cka_headlines(cka)
    comparisons = [
        findings.accuracy_comparison(
            a,
            b,
            [prediction_overlap(pa, pb, labels) for pa, pb in zip(predictions[a], predictions[b])],
        )
        for a, b in BEYOND_PAPER
        if a in predictions and b in predictions
    ]
    probe_findings = {}
    if PROBE_FAMILY in predictions:
        probe_ensembles = ensemble_study(probabilities, labels, base="cnn", other=PROBE_FAMILY)
        probe_findings = {
            "probe_ensembles": probe_ensembles,
            "probe_findings": findings.all_findings(
                within, between, overlap, probe_ensembles, num_classes, gmn=PROBE_FAMILY
            ),
        }
    return {
        "accuracy": {f: mean_std([r["test_accuracy"] for r in rs]) for f, rs in runs.items()},
        "val_accuracy": {
            f: mean_std([r["best_val_accuracy"] for r in rs]) for f, rs in runs.items()
        },
        "overlap": overlap,
        "ensembles": ensembles,
        "comparisons": comparisons,
        "findings": findings.all_findings(within, between, overlap, ensembles, num_classes),
        **probe_findings,
    }
