"""Command line of ``python -m benchmarks.inr_classification``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from .config import (
    DATASETS,
    DEFAULT_EPOCHS,
    FAMILIES,
    WEIGHTS_ONLY_GMN_EPOCHS,
    ZOOS,
    BenchmarkConfig,
)

DESCRIPTION = """\
The INR-classification benchmark and the representation study of Yeom & Lee (2025),
"On the Internal Representations of Graph Metanetworks", in one command.

Images -> INRs (fitted here, or read from a public zoo) -> one seeded train/val/test split
shared by every model -> S seeds each of a GMN on the INR parameter graphs alone (gmn), an
MLP, a CNN and a ViT on the images, an MLP on the flattened INR weights, the GMN without
random permutations (gmn_noaug) and a GMN that also sees function samples, the INR's values
on the pixel grid (gmn_probe) -> best-validation checkpoint tested once -> probes on the test
set -> CKA within and between families, prediction overlap, ensembles -> results.json,
report.md and PNG figures in --out. Every stage is cached in --out: run the same command
again to resume a killed run or to reuse fitted INRs and trained models.

With no options: scikit-learn's 8x8 digits, offline, 3 seeds per family, a few minutes
on 2 CPU cores."""

EPILOG = """\
examples:
  python -m benchmarks.inr_classification
  python -m benchmarks.inr_classification --dataset mnist --root ../shared/data/mnist-test-half \\
      --source-split test --epochs 30 --out results/inr-mnist-half
  python -m benchmarks.inr_classification --inr-init independent \
      --families gmn,gmn_probe,weight_mlp,mlp,cnn --out results/inr-digits-independent
  python -m benchmarks.inr_classification --zoo dwsnets-mnist /data/mnist-inrs --device cuda
  python -m benchmarks.inr_classification --gmn-config '{"hidden_dim": 128, "lr": 1e-3}'"""


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(","))


def _epochs(text: str) -> tuple[int | None, dict[str, int]]:
    """``N``, ``FAMILY=N,…`` or both (``16,gmn=60``) → (every family's N, {family: N})."""
    every, own = None, {}
    for item in (x.strip() for x in text.split(",") if x.strip()):
        name, _, value = item.rpartition("=")
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r} is not N or FAMILY=N") from None
        if not name and every is not None:
            raise argparse.ArgumentTypeError(f"two epochs for every family in {text!r}")
        if name:
            own[name.strip()] = number
        else:
            every = number
    return every, own


def _families(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _json_object(text: str) -> dict:
    """A JSON object given inline or as the path of a .json file."""
    source = Path(text).read_text() if text.endswith(".json") else text
    try:
        value = json.loads(source)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text!r}") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    d = BenchmarkConfig()
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.inr_classification",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = p.add_argument_group("data")
    add_image_arguments(data, d)
    data.add_argument(
        "--zoo",
        nargs=2,
        metavar=("KIND", "DIR"),
        help=f"read a public INR zoo instead of fitting INRs; KIND is one of "
        f"{', '.join(ZOOS)}; image families then train on the INRs' "
        "renderings and the zoo's own split is used",
    )
    data.add_argument(
        "--classes",
        type=_ints,
        metavar="C,C,...",
        help="keep only these class labels, renumbered 0..k-1 in increasing order "
        "(default: all classes)",
    )

    inr = p.add_argument_group("INR fitting")
    inr.add_argument(
        "--views",
        type=int,
        default=d.views,
        help="INRs fitted per image, each from its own initialisation; "
        "parameter families train on all views and are tested on view 0 "
        "(default: %(default)s)",
    )
    inr.add_argument(
        "--stream-shards",
        type=int,
        metavar="N",
        help="hold at most N INR shards (1,024 INRs each) in memory: parameter families "
        "read their training INRs from the shards, shuffled within windows of N shards, so "
        "many views fit any memory (default: every shard read stays loaded, shuffled over "
        "the whole training set)",
    )
    add_inr_arguments(inr, d)

    train = p.add_argument_group("training")
    train.add_argument(
        "--families",
        type=_families,
        default=d.families,
        metavar="F,F,...",
        help=f"model families to train, from {', '.join(FAMILIES)}; gmn, mlp and "
        "cnn are required (default: all but gmn_noaug and nfn_np)",
    )
    add_training_arguments(train, d)
    train.add_argument(
        "--epochs",
        type=_epochs,
        default=(d.epochs, d.family_epochs),
        metavar="N | FAMILY=N,...",
        help="training epochs: N for every family, FAMILY=N for one (16,gmn=60: gmn 60, "
        f"every other family 16) (default: each family's own, {WEIGHTS_ONLY_GMN_EPOCHS} for "
        f"gmn and gmn_noaug, {DEFAULT_EPOCHS} for the others); a GMN family takes "
        "--gmn-config's epochs over N, FAMILY=N over both",
    )
    train.add_argument(
        "--gmn-config",
        type=_json_object,
        default={},
        metavar="JSON",
        help="options of every GMN family as a JSON object or a .json file: keys of "
        "gmn.nn.GMNConfig configure the model (gmn, gmn_noaug: gmn.nn.INR_WEIGHTS_ONLY; "
        "gmn_probe: its own, see docs/benchmark.md); lr, weight_decay, batch_size, epochs, "
        "warmup_fraction, shift_pixels, input_noise, label_smoothing its training. "
        "Function samples are decided by the family (gmn_probe), not here",
    )

    study = p.add_argument_group("representation study")
    add_cka_arguments(study, d)
    study.add_argument(
        "--procrustes",
        action="store_true",
        help="add a report section: orthogonal Procrustes beside CKA, whether each "
        "similarity finding holds under both, Holm-corrected CKA p-values",
    )
    add_run_arguments(p.add_argument_group("run"), d, "results/inr-DATASET")
    return p


def add_image_arguments(group, d: BenchmarkConfig) -> None:
    """--dataset, --root, --source-split, --image-size, --limit, --split (defaults ``d``)."""
    group.add_argument(
        "--dataset",
        choices=DATASETS,
        default=d.dataset,
        help="image source (default: %(default)s, bundled with scikit-learn)",
    )
    group.add_argument(
        "--root",
        metavar="DIR",
        help="folder holding the dataset's files (MNIST/Fashion-MNIST idx files, "
        "CIFAR-10 python batches); downloaded there when missing and a "
        "network is available",
    )
    group.add_argument(
        "--source-split",
        choices=("train", "test"),
        default=d.source_split,
        help="which official split of --dataset to load; the benchmark draws its "
        "own train/val/test split from it (default: %(default)s)",
    )
    group.add_argument(
        "--image-size",
        type=int,
        metavar="PX",
        help="resize images to PX×PX before fitting (default: native size)",
    )
    group.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="use a seeded random subset of N images (default: all)",
    )
    group.add_argument(
        "--split",
        type=_floats,
        default=d.split,
        metavar="TRAIN,VAL,TEST",
        help="fractions of the images in each split (default: 0.7,0.1,0.2)",
    )


def add_inr_arguments(group, d: BenchmarkConfig) -> None:
    """--inr-hidden, --inr-init, --inr-steps, --inr-lr, --inr-target-psnr."""
    group.add_argument(
        "--inr-hidden",
        type=_ints,
        metavar="W,W",
        help="hidden widths of the SIREN (default: 16,16 for digits, 32,32 "
        "otherwise: the DWSNets SIREN)",
    )
    group.add_argument(
        "--inr-init",
        choices=("shared", "independent"),
        default=d.inr_init,
        help="shared: every INR (of one view) starts from the same initialisation, so "
        "parameters of different images are comparable; independent: one random start per "
        "INR, as in the public zoos, a much harder task (default: %(default)s)",
    )
    group.add_argument(
        "--inr-steps",
        type=int,
        default=d.inr_steps,
        help="maximum Adam steps per INR (default: %(default)s)",
    )
    group.add_argument(
        "--inr-lr",
        type=float,
        default=d.inr_lr,
        help="Adam learning rate of INR fitting (default: %(default)s)",
    )
    group.add_argument(
        "--inr-target-psnr",
        type=float,
        default=d.inr_target_psnr,
        help="stop fitting an INR once it reaches this PSNR in dB (default: %(default)s)",
    )


def add_training_arguments(group, d: BenchmarkConfig) -> None:
    """--seeds, --seed, --batch-size, --lr (each benchmark adds its own --epochs)."""
    group.add_argument(
        "--seeds",
        type=int,
        default=d.seeds,
        help="random initialisations per family, >= 2 (default: %(default)s)",
    )
    group.add_argument(
        "--seed",
        type=int,
        default=d.seed,
        help="first seed; also seeds INR fitting, the split and the CKA "
        "permutations (default: %(default)s)",
    )
    group.add_argument(
        "--batch-size",
        type=int,
        default=d.batch_size,
        help="batch size of the image families and the weight MLP (default: %(default)s)",
    )
    group.add_argument(
        "--lr",
        type=float,
        default=d.lr,
        help="AdamW learning rate of the image families and the weight MLP (default: %(default)s)",
    )


def add_cka_arguments(group, d: BenchmarkConfig) -> None:
    """--cka-permutations, --cka-permutation-samples."""
    group.add_argument(
        "--cka-permutations",
        type=int,
        default=d.cka_permutations,
        help="permutations of the CKA permutation tests (default: %(default)s)",
    )
    group.add_argument(
        "--cka-permutation-samples",
        type=int,
        default=d.cka_permutation_samples,
        metavar="N",
        help="the permutation tests run on the first N test samples, the only states the "
        "CKA stage keeps (CKA matrices and headlines always use every test sample, "
        "streamed); memory grows with N, not with the test set (default: %(default)s)",
    )


def add_run_arguments(group, d: BenchmarkConfig, out_default: str) -> None:
    """--out (``out_default`` when not given), --device, --threads, --resume, --progress."""
    group.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help=f"output and cache folder (default: {out_default})",
    )
    group.add_argument(
        "--device",
        default=d.device,
        help="torch device for fitting, training and probing, e.g. cpu, cuda, "
        "cuda:1 (default: %(default)s)",
    )
    group.add_argument(
        "--threads",
        type=int,
        default=d.threads,
        metavar="N",
        help="CPU threads of PyTorch (default: %(default)s; None: PyTorch's choice); on a "
        "machine shared with other jobs, 1 avoids oversubscribing the cores",
    )
    group.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=d.resume,
        help="reuse the cached stages in --out and resume interrupted training "
        "(default: on); --no-resume refuses a non-empty --out",
    )
    group.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=d.progress,
        help="show progress bars (default: on)",
    )


def parse_config(argv: list[str] | None = None) -> BenchmarkConfig:
    """Parse the command line into a validated :class:`BenchmarkConfig`."""
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    zoo = args.pop("zoo")
    args["epochs"], args["family_epochs"] = args["epochs"]
    args["zoo"], args["zoo_dir"] = zoo if zoo else (None, None)
    if args["out"] is None:
        args["out"] = f"results/inr-{args['zoo'] or args['dataset']}"
    try:
        return BenchmarkConfig(**args)
    except ValueError as err:
        parser.error(str(err))


INTERRUPTED = 130  # the shell's exit status for a process stopped by SIGINT (128 + 2)


def run_command(module: str, argv: list[str] | None, parse, run) -> dict:
    """The benchmark ``module`` run from the command line ``argv`` (default: ``sys.argv``):
    ``run(parse(argv), command)``, then the report's path printed; on Ctrl-C, say how to
    resume and exit with status 130. Returns the ``results.json`` dictionary."""
    argv = sys.argv[1:] if argv is None else argv
    config = parse(argv)
    try:
        results = run(config, shlex.join(["python", "-m", module, *argv]))
    except KeyboardInterrupt:  # everything finished so far is cached
        print("\ninterrupted; run the same command to resume", file=sys.stderr, flush=True)
        raise SystemExit(INTERRUPTED) from None
    print(f"\nreport: {Path(config.out) / 'report.md'}")
    return results


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark from the command line ``argv``; on Ctrl-C, say how to resume and
    exit with status 130."""
    from .pipeline import run_benchmark

    results = run_command("benchmarks.inr_classification", argv, parse_config, run_benchmark)
    for finding in results["findings"]:
        print(f"- {finding['verdict']:>12}: {finding['claim']}")
    return results
