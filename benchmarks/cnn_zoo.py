"""Build a zoo of small CNNs (``gmn.zoo.build``) and print what it cost.

    python -m benchmarks.cnn_zoo build --out results/cnn_zoo            # digits, 1,200 CNNs
    python -m benchmarks.cnn_zoo build --dataset mnist --root /work/shared/data/mnist-test-half \
        --size 14 --train-images 3500 --out results/cnn_zoo_mnist
    python -m benchmarks.cnn_zoo info results/cnn_zoo

A killed build resumes where it stopped when run again with the same options.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from dataclasses import fields

import torch

from gmn.zoo.build import ZooConfig, build_zoo
from gmn.zoo.store import ModelZoo


def _cpu_seconds() -> float:
    usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def add_config_arguments(parser: argparse.ArgumentParser, defaults: ZooConfig) -> None:
    """One ``--option`` per :class:`ZooConfig` field (``train_images`` → ``--train-images``)."""
    for field in fields(ZooConfig):
        default = getattr(defaults, field.name)
        kind = {"float": float, "int": int}.get(str(field.type).split(" ")[0], str)
        parser.add_argument("--" + field.name.replace("_", "-"), dest=field.name,
                            type=kind, default=default, help=f"default {default}")


def config_of(args: argparse.Namespace) -> ZooConfig:
    return ZooConfig(**{f.name: getattr(args, f.name) for f in fields(ZooConfig)})


def summarize(zoo: ModelZoo) -> dict:
    """Counts and accuracy range of a zoo."""
    accuracy = zoo.targets()
    finite = sum(m["finite"] for m in zoo.models)
    return {"models": len(zoo), "architectures": len(zoo.architectures), "finite": finite,
            "test_accuracy": {"min": accuracy.min().item(), "mean": accuracy.mean().item(),
                              "max": accuracy.max().item()}}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cnn_zoo")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build or resume a zoo")
    build.add_argument("--out", default="results/cnn_zoo")
    build.add_argument("--workers", type=int, default=1, help="training processes")
    build.add_argument("--threads", type=int, default=1, help="torch threads per process")
    build.add_argument("--no-progress", action="store_true")
    add_config_arguments(build, ZooConfig())
    info = commands.add_parser("info", help="describe a built zoo")
    info.add_argument("folder")
    args = parser.parse_args(argv)
    if args.command == "info":
        print(json.dumps(summarize(ModelZoo(args.folder)), indent=1))
        return
    config = config_of(args)
    wall, cpu = time.perf_counter(), _cpu_seconds()
    zoo = build_zoo(args.out, config, workers=args.workers, threads=args.threads,
                    progress=not args.no_progress)
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    report = dict(summarize(zoo), wall_seconds=round(wall, 1), cpu_seconds=round(cpu, 1),
                  wall_per_cnn=round(wall / len(zoo), 3), cpu_per_cnn=round(cpu / len(zoo), 3),
                  workers=args.workers, threads=args.threads, torch=torch.__version__)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
