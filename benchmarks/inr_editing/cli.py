"""Command line of ``python -m benchmarks.inr_editing``."""

from __future__ import annotations

import argparse

from benchmarks.inr_classification.cli import (
    _families,
    _json_object,
    add_cka_arguments,
    add_image_arguments,
    add_inr_arguments,
    add_run_arguments,
    add_training_arguments,
    run_command,
)

from .config import FAMILIES, EditingConfig

DESCRIPTION = """\
INR editing (dilation, as in DWSNets and neural-graphs) and the representation study on an
equivariant task, in one command.

Images -> one SIREN per image -> S seeds each of models that output an edited INR (an MLP on
the flattened weights, a GMN with equivariant heads, the same GMN with function samples,
NFN-NP) or an edited image (an MLP and a CNN on the rendered INR) -> loss and test metric:
mean squared error of the rendered output against the dilated image -> probes and CKA within
and between families, the study's verdicts -> results.json, report.md (with a picture grid)
and PNG figures in --out. Every stage is cached in --out: run the same command again to
resume a killed run or to reuse fitted INRs and trained models.

With no options: scikit-learn's 8x8 digits, offline, 3 seeds per family."""

EPILOG = """\
examples:
  python -m benchmarks.inr_editing
  python -m benchmarks.inr_editing --inr-init independent --out results/inr-editing-independent
  python -m benchmarks.inr_editing --dataset mnist --root ../shared/data/mnist-test-half \\
      --source-split test --out results/inr-editing-mnist"""


def build_parser() -> argparse.ArgumentParser:
    d = EditingConfig()
    p = argparse.ArgumentParser(prog="python -m benchmarks.inr_editing", description=DESCRIPTION,
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data and task")
    add_image_arguments(data, d)
    data.add_argument("--dilation", type=int, default=d.dilation, metavar="K",
                      help="dilate each image by a K×K square (default: %(default)s)")
    add_inr_arguments(p.add_argument_group("INR fitting"), d)
    train = p.add_argument_group("training")
    train.add_argument("--families", type=_families, default=d.families, metavar="F,F,...",
                       help=f"families, from {', '.join(FAMILIES)}; no_edit, gmn, mlp and cnn "
                       "are required (default: all)")
    add_training_arguments(train, d)
    train.add_argument("--epochs", type=int, default=d.epochs,
                       help="epochs of the image families and the weight MLP (default: "
                       "%(default)s); the equivariant families have their own (--gmn-config)")
    train.add_argument("--gmn-config", type=_json_object, default={}, metavar="JSON",
                       help="options of the GMN families over the benchmark's own "
                       "(benchmarks/inr_editing/families.py): keys of gmn.nn.GMNConfig "
                       "(EDIT_GMN), lr, weight_decay, batch_size, epochs, warmup_fraction "
                       "(TRAINING)")
    add_cka_arguments(p.add_argument_group("representation study"), d)
    add_run_arguments(p.add_argument_group("run"), d, "results/inr-editing-DATASET")
    return p


def parse_config(argv: list[str] | None = None) -> EditingConfig:
    """Parse the command line into a validated :class:`EditingConfig`."""
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    if args["out"] is None:
        args["out"] = f"results/inr-editing-{args['dataset']}"
    try:
        return EditingConfig(**args)
    except ValueError as err:
        parser.error(str(err))


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark from the command line ``argv``; on Ctrl-C, say how to resume and
    exit with status 130."""
    from .pipeline import run_benchmark

    results = run_command("benchmarks.inr_editing", argv, parse_config, run_benchmark)
    for family, stat in results["mse"].items():
        print(f"- {family:>10}: test MSE {stat['mean']:.4f} ± {stat['std']:.4f}")
    for check in results["targets"]:
        print(f"- {'met' if check['met'] else 'NOT met':>10}: {check['target']}")
    for family, claims in results["findings"].items():
        for finding in claims:
            print(f"- {family:>10} {finding['verdict']:>12}: {finding['claim']}")
    return results
