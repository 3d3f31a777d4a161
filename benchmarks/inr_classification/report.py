"""Render ``report.md`` from the ``results.json`` dictionary.

Every sentence that states a result is built from the numbers in ``results``; the
thresholds come from :mod:`.findings`.
"""

from __future__ import annotations

from . import findings
from .config import FAMILY_DESCRIPTIONS
from .plots import PAPER_COMPARISONS

VERDICT_MARK = {
    "reproduced": "✅ reproduced",
    "contradicted": "❌ contradicted",
    "inconclusive": "❔ inconclusive",
}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _pm(stat: dict, scale: float = 100.0, digits: int = 1) -> str:
    return f"{scale * stat['mean']:.{digits}f} ± {scale * stat['std']:.{digits}f}"


def _p(p: float | None) -> str:
    if p is None:
        return "–"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


PROBE_LABEL = "gmn_probe (sees function samples on the pixel grid: the image)"


def _label(name: str) -> str:
    """A table's name of a family, comparison or model: ``gmn_probe`` always says what it sees
    (its function samples are the INR's values on the pixel grid)."""
    return name.replace("gmn_probe", PROBE_LABEL)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _accuracy_section(results: dict) -> list[str]:
    rows = []
    for family in results["families"]:
        runs = results["runs"][family]
        per_seed = ", ".join(_pct(r["test_accuracy"]) for r in runs)
        rows.append(
            [
                f"`{family}`",
                FAMILY_DESCRIPTIONS[family],
                _pm(results["accuracy"][family]),
                per_seed,
                ", ".join(str(r["best_epoch"]) for r in runs),
            ]
        )
    return [
        "## Test accuracy",
        "",
        f"INRs of {_setting(results)}. Best-validation checkpoint of each seed, tested once "
        "(mean ± sample std over seeds).",
        "",
        *_table(["family", "model", f"test accuracy (%), {_setting(results)}", "per seed",
                 "best epoch"], rows),
        "",
    ]


def _unreachable(smallest: list[float]) -> str:
    """A warning when some test cannot reach p ≤ ALPHA with its n, whatever the data."""
    worst = max(smallest)
    if worst <= findings.ALPHA:
        return ""
    return (
        f" ⚠ With these sample sizes a test cannot reach p ≤ {findings.ALPHA} (its smallest "
        f"p is {_p(worst)}): this claim cannot be reproduced by this run, whatever the data."
    )


def _finding_evidence(finding: dict) -> str:
    if "tests" in finding:
        tests = finding["tests"]
        parts = [
            f"{t['lower']} {t['mean_lower']:.3f} vs {t['higher']} {t['mean_higher']:.3f} "
            f"(difference {t['difference']:+.3f}, permutation p = {_p(t['p_value'])} over "
            f"n = {t['n_lower']} and {t['n_higher']} seed pairs; smallest reachable p "
            f"{_p(t['smallest_p'])})"
            for t in tests
        ]
        rule = (
            f"reproduced when the difference ≥ {findings.CKA_MARGIN} and p ≤ "
            f"{findings.ALPHA} for every comparison"
        )
        return ("Debiased CKA, mean over seed pairs: " + "; ".join(parts) + f". Rule: {rule}."
                + _unreachable([t["smallest_p"] for t in tests]))
    if "only_gmn" in finding:
        parts = [
            f"{name}: " + ", ".join(
                f"{t['only_gmn']} of n = {t['n']} ({_pct(t['fraction'])}; of the "
                f"{t['image_wrong']} the image model misses, p = {_p(t['p_value'])}, smallest "
                f"reachable {_p(t['smallest_p'])})"
                for t in per_seed
            )
            for name, per_seed in finding["only_gmn"].items()
        ]
        tests = [t for per_seed in finding["only_gmn"].values() for t in per_seed]
        return (
            "Test samples right only for the GMN (first family named), per seed: "
            + "; ".join(parts)
            + f". Rule: reproduced when every count is ≥ {_pct(finding['threshold'])} of the "
            "test samples and more than guessing gives: p = P(Binomial(m, 1/C) ≥ count) ≤ "
            f"{findings.ALPHA}, with m the samples the image model misses and C = "
            f"{finding['num_classes']} classes (a uniform guess is right with probability "
            "1/C)." + _unreachable([t["smallest_p"] for t in tests])
        )
    pairings = finding["pairings"]
    parts = [
        f"{p['mixed']} {_pct(p['mixed_accuracy'])} vs {p['same']} "
        f"{_pct(p['same_accuracy'])} (McNemar p = {_p(p['mcnemar_p'])}; the ensembles "
        f"disagree on {p['discordant']} of n = {p['n']}, smallest reachable p "
        f"{_p(p['smallest_p'])})"
        for p in pairings
    ]
    return (
        "Ensembles by averaged probabilities: "
        + "; ".join(parts)
        + f". Rule: reproduced when the mixed ensemble wins every pairing with p ≤ "
        f"{findings.ALPHA}." + _unreachable([p["smallest_p"] for p in pairings])
    )


def _finding_lines(claims: list[dict], setting: str) -> list[str]:
    lines = []
    for i, finding in enumerate(claims, 1):
        lines += [
            f"{i}. **{finding['claim']}** — {VERDICT_MARK[finding['verdict']]} "
            f"(INRs of {setting}).",
            f"   {_finding_evidence(finding)}",
            "",
        ]
    return lines


def _setting(results: dict) -> str:
    """How the INRs were initialised (results of versions that did not record it say so)."""
    return results["data"].get("setting", "an initialisation not recorded")


def _findings_section(results: dict) -> list[str]:
    lines = [
        "## Findings",
        "",
        "Each claim of Yeom & Lee (2025) is tested on this run's numbers; the verdict is "
        "computed, with the rule stated. The GMN is `gmn`: "
        f"{FAMILY_DESCRIPTIONS['gmn']}. Setting: INRs of {_setting(results)}.",
        "",
        *_finding_lines(results["findings"], _setting(results)),
    ]
    if "probe_findings" in results:
        lines += [
            "### The same claims for `gmn_probe` (it sees function samples on the pixel grid, "
            "i.e. the image)",
            "",
            f"`gmn_probe`: {FAMILY_DESCRIPTIONS['gmn_probe']}. Not a weights-only model: "
            "read these verdicts as a GMN that also sees the image.",
            "",
            *_finding_lines(results["probe_findings"], _setting(results)),
        ]
    return lines


def _interval(ci: dict | None) -> str:
    """``[low, high]``, a bound clipped to [0, 1] marked † with its computed value."""
    if ci is None:
        return "–"
    low, high = ci["low"], ci["high"]
    raw_low, raw_high = ci["clipped"] or (low, high)
    return (f"[{low:.3f}{'†' if raw_low != low else ''}, "
            f"{high:.3f}{'†' if raw_high != high else ''}]")


def _cka_rows(groups: dict) -> list[list[str]]:
    rows = []
    for name, group in groups.items():
        stats = group.get("statistics", {})
        rows.append(
            [
                f"`{_label(name)}`",
                str(len(group["pairs"])),
                _pm(group["headline_debiased"], 1, 3),
                _pm(group["headline_biased"], 1, 3),
                _p(stats.get("p_value")),
                _interval(stats.get("ci")),
            ]
        )
    return rows


def _cka_section(results: dict) -> list[str]:
    cka = results["cka"]
    header = [
        "models",
        "pairs",
        "debiased CKA",
        "biased CKA",
        "p (first pair)",
        "95% CI over pairs (clipped to [0, 1]: †)",
    ]
    lines = [
        "## CKA",
        "",
        cka["statistic"],
        "",
        "### Between seeds of one family",
        "",
        *_table(header, _cka_rows(cka["within"])),
        "",
        "### Between families",
        "",
        *_table(header, _cka_rows(cka["between"])),
        "",
    ]
    shown = {f"cka_{k}" for k in (*cka["within"], *PAPER_COMPARISONS)}
    figures = {k: v for k, v in results["figures"].items() if k.startswith("cka_")}
    lines += [f"![{name}]({path})" for name, path in figures.items() if name in shown]
    others = [f"[{name[4:]}]({path})" for name, path in figures.items() if name not in shown]
    if others:
        lines += ["", "Other heatmaps: " + ", ".join(others) + "."]
    return lines + [""]


def _overlap_section(results: dict) -> list[str]:
    rows = []
    for name, per_seed in results["overlap"].items():
        a, b = name.split("-")
        for seed, o in enumerate(per_seed):
            rows.append(
                [
                    f"`{_label(a)}` vs `{_label(b)}`",
                    str(seed),
                    _pct(o["both_right"] / o["n"]),
                    _pct(o["only_a"] / o["n"]),
                    _pct(o["only_b"] / o["n"]),
                    _pct(o["both_wrong"] / o["n"]),
                    _p(o["mcnemar_p"]),
                ]
            )
    header = [
        "models (A vs B)",
        "seed",
        "both right",
        "only A",
        "only B",
        "both wrong",
        "McNemar p",
    ]
    lines = [
        "## Prediction overlap",
        "",
        "Seed i of A against seed i of B (for `cnn` vs `cnn`: seed i against seed i+1, "
        "the disagreement that a new initialisation alone causes).",
        "",
        *_table(header, rows),
        "",
    ]
    if "accuracy" in results["figures"]:
        lines += [f"![accuracy and overlap]({results['figures']['accuracy']})", ""]
    return lines


def _ensemble_lines(ens: dict) -> list[str]:
    rows = [
        [
            p["mixed"],
            _pct(p["mixed_accuracy"]),
            p["same"],
            _pct(p["same_accuracy"]),
            f"{100 * p['difference']:+.1f}",
            _p(p["mcnemar_p"]),
        ]
        for p in ens["pairings"]
    ]
    return [
        f"Averaged probabilities. Mean accuracy: {ens['base']} + {_label(ens['other'])} "
        f"{_pm(ens['mixed_accuracy'])}%, {ens['base']} + {ens['base']} "
        f"{_pm(ens['same_accuracy'])}%.",
        "",
        *_table(["mixed", "acc.", "same family", "acc.", "Δ (points)", "McNemar p"], rows),
        "",
    ]


def _ensemble_section(results: dict) -> list[str]:
    lines = ["## Ensembles", "", *_ensemble_lines(results["ensembles"])]
    if "probe_ensembles" in results:
        lines += _ensemble_lines(results["probe_ensembles"])
    return lines


def _beyond_section(results: dict) -> list[str]:
    if not results["comparisons"]:
        return []
    rows = [
        [
            f"`{_label(c['a'])}` vs `{_label(c['b'])}`",
            ", ".join(f"{100 * d:+.1f}" for d in c["accuracy_difference"]),
            ", ".join(_p(p) for p in c["mcnemar_p"]),
            c["verdict"],
        ]
        for c in results["comparisons"]
    ]
    return [
        "## Beyond the paper",
        "",
        "Seed i against seed i; a family is called better only when it wins every seed "
        f"with McNemar p ≤ {findings.ALPHA}.",
        "",
        *_table(
            ["families", "accuracy difference per seed (points)", "McNemar p", "verdict"], rows
        ),
        "",
    ]


def _epochs(results: dict) -> str:
    """Each family's training epochs, as its runs' keys record them: "gmn 60, mlp 10"."""
    return ", ".join(
        f"{family} {'/'.join(sorted({str(r['key']['epochs']) for r in results['runs'][family]}))}"
        for family in results["families"]
    )


def _wall_times(results: dict) -> str:
    """Seconds per stage summed over every invocation, and how those invocations ended."""
    timings = results["timings"]
    names = [k for k in timings if "/" not in k and k != "total"] + ["total"]
    stages = ", ".join(f"{k} {timings[k]:.0f} s" for k in names)
    invocations = results["invocations"]
    ended = [i["status"] for i in invocations[:-1]]
    ended = ["killed" if status == "running" else status for status in ended]
    counts = {status: ended.count(status) for status in dict.fromkeys(ended)}
    earlier = ", ".join(f"{n} {status}" for status, n in counts.items())
    how = f" (earlier ones: {earlier})" if earlier else ""
    plural = "s" if len(invocations) > 1 else ""
    return (
        f"{stages}; summed over {len(invocations)} invocation{plural} of the benchmark on "
        f"this --out{how}, this one {invocations[-1]['seconds']:.0f} s"
    )


def _setup_section(results: dict) -> list[str]:
    data = results["data"]
    return [
        "## Setup",
        "",
        f"- command: `{results['command']}`",
        f"- data: {data['description']}; split {data['n_train']} / {data['n_val']} / "
        f"{data['n_test']} (train / val / test), {data['num_classes']} classes",
        f"- INRs: {data['inr_description']}",
        f"- seeds per family: {len(results['seeds'])} ({results['seeds']}); epochs: "
        f"{_epochs(results)}; device: {results['config']['device']}",
        f"- wall time per stage: {_wall_times(results)}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
        "",
    ]


def render_report(results: dict) -> str:
    """The Markdown report for one benchmark run."""
    lines = [f"# INR classification benchmark: {results['data']['name']}", ""]
    for section in (
        _setup_section,
        _accuracy_section,
        _findings_section,
        _cka_section,
        _overlap_section,
        _ensemble_section,
        _beyond_section,
    ):
        lines += section(results)
    return "\n".join(lines).rstrip() + "\n"
