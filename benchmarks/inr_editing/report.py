"""Render the editing benchmark's ``report.md`` from its ``results.json`` dictionary; the
study's sections are the classification report's (verdict lines, CKA tables, heatmaps)."""

from __future__ import annotations

from benchmarks.inr_classification.report import (
    _cka_section,
    _finding_lines,
    _pm,
    _setting,
    _table,
)

from .config import FAMILY_DESCRIPTIONS


def _number(x: float) -> str:
    return f"{x:.4f}"


def _setup_section(results: dict) -> list[str]:
    data, timings, load = results["data"], results["timings"], results["load_average"]
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items() if "/" not in k)
    config = results["config"]
    return [
        "## Setup",
        "",
        f"- command: `{results['command']}`",
        f"- task: {data['task']} of each image; the target is the INR's function on the "
        "dilated image (loss: mean squared error of the rendered output, in function space)",
        f"- data: {data['description']}; split {data['n_train']} / {data['n_val']} / "
        f"{data['n_test']} (train / val / test)",
        f"- INRs: **{_setting(results)}**; {data['inr_description']}",
        f"- seeds per family: {len(results['seeds'])} ({results['seeds']}); image families "
        f"and weight MLP: {config['epochs']} epochs; device: {config['device']}, threads: "
        f"{config['threads'] or 'default'}",
        f"- wall time per stage: {stages}",
        "- load average (1, 5, 15 min) at start / end: "
        + " / ".join(", ".join(f"{x:.1f}" for x in load[k]) for k in ("start", "end")),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
        "",
    ]


def _mse_section(results: dict) -> list[str]:
    none = results["mse"]["no_edit"]["mean"]
    rows = []
    for family in results["families"]:
        stat, runs = results["mse"][family], results["runs"][family]
        rows.append([
            f"`{family}`",
            FAMILY_DESCRIPTIONS[family],
            _pm(stat, 1.0, 4),
            ", ".join(_number(r["test_mse"]) for r in runs),
            f"{stat['mean'] / none:.2f}",
            ", ".join("–" if r["best_epoch"] is None else str(r["best_epoch"]) for r in runs),
        ])
    lines = [
        "## Test MSE",
        "",
        f"INRs of {_setting(results)}. Mean squared error of the edited image against the "
        "dilated image, per test image, averaged (mean ± sample std over seeds; the "
        "best-validation checkpoint of each seed, tested once).",
        "",
        *_table(["family", "model", "test MSE", "per seed", "× no edit", "best epoch"], rows),
        "",
    ]
    for check in results["targets"]:
        mark = "✅ met" if check["met"] else "❌ not met"
        against = (f" against {', '.join(map(_number, check['against']))}"
                   if "against" in check else "")
        lines.append(f"- target: {check['target']}: {mark} "
                     f"({', '.join(map(_number, check['values']))}{against})")
    figure = results["figures"]["pictures"]
    return lines + ["", f"![input, target and each family's edit (seed 0)]({figure})", ""]


def _findings_section(results: dict) -> list[str]:
    lines = [
        "## Findings on an equivariant task",
        "",
        "The claims of Yeom & Lee (2025) that concern representations, tested on the editing "
        "task for each metanetwork (the GMN, the GMN with function samples, NFN-NP), with "
        "the classification report's rules; `mlp` and `cnn` edit the rendered image.",
        "",
    ]
    for family, claims in results["findings"].items():
        lines += [f"### `{family}`", "", *_finding_lines(claims, _setting(results))]
    return lines


def render_report(results: dict) -> str:
    """The Markdown report of one editing run."""
    lines = [f"# INR editing benchmark: {results['data']['name']}, {results['data']['task']}",
             ""]
    for section in (_setup_section, _mse_section, _findings_section, _cka_section):
        lines += section(results)
    return "\n".join(lines).rstrip() + "\n"
