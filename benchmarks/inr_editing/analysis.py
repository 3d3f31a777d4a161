"""The numbers of the editing report: test MSE over seeds and the benchmark's targets."""

from __future__ import annotations

from benchmarks.inr_classification.analysis import mean_std

HALF = 0.5  # the GMN's target: at most half the no-edit MSE


def mse_summary(runs: dict[str, list[dict]]) -> dict[str, dict]:
    """family -> mean ± std (over seeds) of the test MSE."""
    return {family: mean_std([r["test_mse"] for r in rs]) for family, rs in runs.items()}


def targets(mse: dict[str, dict]) -> list[dict]:
    """The targets of the GMN on this run, each met or not, checked on every seed: test MSE
    ≤ ``HALF`` × the no-edit MSE, and below the weight MLP's (seed i against seed i)."""
    gmn, none = mse["gmn"]["values"], mse["no_edit"]["mean"]
    checks = [{
        "target": f"gmn test MSE ≤ {HALF} × no edit ({HALF * none:.4f})",
        "values": gmn,
        "met": all(v <= HALF * none for v in gmn),
    }]
    if "weight_mlp" in mse:
        weight_mlp = mse["weight_mlp"]["values"]
        checks.append({
            "target": "gmn test MSE below weight_mlp's (seed by seed)",
            "values": gmn,
            "against": weight_mlp,
            "met": all(a < b for a, b in zip(gmn, weight_mlp)),
        })
    return checks
