"""`python -m gmn.check`: does gmn compute the right numbers on this machine's accelerator?

May import: gmn.graph, gmn.nn, gmn.scatter, gmn.cka, gmn.data, gmn.models, gmn.train, gmn.probing.

    python -m gmn.check                 # on CUDA when it is available, else the CPU
    python -m gmn.check --device cuda:1 --out checks.json
    python -m gmn.check --only gmn_forward_backward trainer

Every check runs the same seeded computation on the CPU and on ``--device`` and prints one
line, ``PASS|FAIL name: measured numbers (tolerance)``: scatter, graph round trips, GMN
forward/backward (the canonical features included), permutation invariance and bf16, probes,
function samples, CKA, INR fitting, the trainer in fp32/bf16/fp16 with a kill and resume,
and weight-space augmentations. A check that raises is a FAIL with the exception text; the
others still run. The last lines say what works and what does not; the exit status is 1
when any check fails, 2 when the device asked for is not there. Without CUDA (a CPU-only
torch, or no GPU visible) it says so and compares the CPU with itself, which checks the
checks. fp32 comparisons run with TF32 off (``allow_tf32 = False``): TF32 rounds matmul
inputs to 10 mantissa bits, far beyond the 1e-4 tolerances here.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import math
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import gmn

CPU = torch.device("cpu")


class Report:
    """The measurements of one check: ``(label, value, tolerance, ok)`` items."""

    def __init__(self):
        self.items: list[dict] = []

    def close(self, label: str, got: Tensor, want: Tensor, tol: float,
              relative: bool = False) -> float:
        """Max |got - want| (divided by max |want| when ``relative``) must be ≤ ``tol``."""
        got, want = got.detach().cpu().double(), want.detach().cpu().double()
        if got.shape != want.shape:
            self.items.append(dict(label=label, value=f"shape {list(got.shape)} vs "
                                   f"{list(want.shape)}", tol=tol, ok=False))
            return math.inf
        diff = (got - want).abs().max().item() if got.numel() else 0.0
        if relative and want.numel():
            diff /= max(want.abs().max().item(), 1e-12)
        ok = math.isfinite(diff) and diff <= tol
        self.items.append(dict(label=("rel " if relative else "") + label, value=diff, tol=tol,
                               ok=ok))
        return diff

    def true(self, label: str, ok: bool, value=None) -> None:
        """A condition (``value`` is reported beside it)."""
        self.items.append(dict(label=label, value=value if value is not None else bool(ok),
                               tol=None, ok=bool(ok)))

    def info(self, label: str, value) -> None:
        """A number worth knowing that decides nothing."""
        self.items.append(dict(label=label, value=value, tol=None, ok=True))


def _siren_template(hidden=(32, 32)):
    from gmn.models.siren import Siren

    return gmn.GraphTemplate.from_module(Siren(2, hidden, 1))


def siren_params(n: int, seed: int = 0) -> tuple[gmn.GraphTemplate, Tensor]:
    """The SIREN 2→32→32→1 template and [n, P] realistic initialisations (CPU)."""
    from gmn.data.batched_siren import init_params
    from gmn.graph import Weights
    from gmn.models.siren import SirenLayout

    template = _siren_template()
    params = init_params(SirenLayout(), [seed * 1000 + i for i in range(n)])
    return template, Weights.from_stacked(template, params).params


def _small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))


def _gmn(seed: int = 0, **overrides) -> nn.Module:
    """A GMN with canonical features (fit it before its first forward)."""
    torch.manual_seed(seed)
    options = dict(out_dim=10, hidden_dim=32, num_layers=2, use_global=True,
                   aggregations=("mean", "max"), canonical_standardization=True)
    return gmn.nn.GMN(**{**options, **overrides}).eval()


# ----------------------------------------------------------------------------- checks
def check_scatter(device: torch.device) -> Report:
    from gmn.scatter import scatter

    r = Report()
    g = torch.Generator().manual_seed(0)
    src = torch.randn(2000, 16, generator=g)
    index = torch.randint(0, 300, (2000,), generator=g)
    index = index + (index >= 100) * 20  # rows 100..119 and 320..349 stay empty
    for reduce in ("sum", "mean", "max", "min"):
        want = scatter(src, index, 350, reduce)
        got = scatter(src.to(device), index.to(device), 350, reduce)
        r.true(f"{reduce} on device", got.device.type == device.type)
        r.close(reduce, got, want, 1e-5, relative=True)
        r.true(f"{reduce} empty rows 0", bool((got[100:120] == 0).all() and (got[320:] == 0).all()))
    return r


def check_graph_roundtrip(device: torch.device) -> Report:
    from gmn.graph import Weights

    r = Report()
    template, flat = siren_params(64)
    y = torch.arange(64) % 10
    want = template.batch(flat, y=y)
    batch = template.batch(flat.to(device), y=y.to(device))
    fields = (batch.x, batch.edge_attr, batch.edge_index, batch.batch, batch.y)
    r.true("batch on device", all(t.device.type == device.type for t in fields))
    for field in ("x", "edge_attr", "edge_index", "batch", "ptr", "node_type", "edge_type"):
        r.true(f"{field} == cpu", torch.equal(batch[field].cpu(), want[field]))
    states = Weights.from_graphs(batch).state_dicts()
    back = Weights.from_state_dicts(template, states).params
    r.true("to_state_dicts bit-exact", torch.equal(back, flat.to(device)))
    r.true("params_of bit-exact", torch.equal(template.params_of(batch), flat.to(device)))
    from gmn.models.siren import Siren

    torch.manual_seed(0)
    for name, model in (("siren", Siren(2, (32, 32), 1)), ("cnn", _small_cnn())):
        model = model.to(device)
        graph = gmn.from_state_dict(model)
        r.true(f"{name} graph on device", graph.x.device.type == device.type)
        state = gmn.to_state_dict(graph)
        exact = all(torch.equal(state[k], v) for k, v in model.state_dict().items())
        r.true(f"{name} to_state_dict bit-exact", exact and set(state) == set(model.state_dict()))
    return r


def _forward_backward(model: nn.Module, batch) -> tuple[Tensor, dict[str, Tensor]]:
    model.zero_grad(set_to_none=True)
    logits = model(batch)
    F.cross_entropy(logits, batch.y).backward()
    return logits.detach(), {k: p.grad for k, p in model.named_parameters() if p.grad is not None}


def _compare_gmn(r: Report, name: str, model: nn.Module, batch, device: torch.device) -> None:
    model.fit_feature_statistics(batch)  # canonical statistics: their lookups run on device
    logits_cpu, grads_cpu = _forward_backward(model, batch)
    on_device = copy.deepcopy(model).to(device)
    logits, grads = _forward_backward(on_device, batch.to(device))
    r.true(f"{name} logits on device", logits.device.type == device.type)
    r.close(f"{name} logits", logits, logits_cpu, 1e-4, relative=True)
    r.true(f"{name} same grads", set(grads) == set(grads_cpu), len(grads))
    worst = max((grads[k] - grads_cpu[k].to(device)).abs().max().item()
                / max(grads_cpu[k].abs().max().item(), 1e-12) for k in grads_cpu)
    r.items.append(dict(label=f"rel {name} worst grad", value=worst, tol=1e-3,
                        ok=math.isfinite(worst) and worst <= 1e-3))


def check_gmn_forward_backward(device: torch.device) -> Report:
    r = Report()
    template, flat = siren_params(32)
    batch = template.batch(flat, y=torch.arange(32) % 10)
    _compare_gmn(r, "siren", _gmn(), batch, device)
    cnn = _small_cnn()
    cnn_template = gmn.GraphTemplate.from_module(cnn)
    cnn_flat = torch.stack([cnn_template.flatten(cnn.state_dict())
                            + 0.05 * torch.randn(cnn_template.num_params,
                                                 generator=torch.Generator().manual_seed(i))
                            for i in range(8)])
    cnn_batch = cnn_template.batch(cnn_flat, y=torch.arange(8) % 10)
    _compare_gmn(r, "cnn", _gmn(1), cnn_batch, device)
    return r


def check_gmn_invariance_and_bf16(device: torch.device) -> Report:
    from gmn.graph import Weights, permute

    r = Report()
    template, flat = siren_params(32)
    batch = template.batch(flat.to(device), y=(torch.arange(32) % 10).to(device))
    model = _gmn()
    model.fit_feature_statistics(template.batch(flat))
    model = model.to(device)
    moved = permute(Weights.from_graphs(batch), torch.Generator().manual_seed(1)).graphs(
        y=batch.y)
    r.true("permuted on device", moved.x.device.type == device.type)
    r.true("permutation moved weights", not torch.equal(moved.edge_attr, batch.edge_attr))
    with torch.no_grad():
        logits = model(batch)
        r.close("permuted logits", model(moved), logits, 1e-4, relative=True)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            low = model(batch)
    r.true("bf16 finite", bool(torch.isfinite(low).all()))
    r.close("bf16 vs fp32 logits", low.float(), logits, 0.1, relative=True)
    return r


def check_probe(device: torch.device) -> Report:
    r = Report()
    template, flat = siren_params(16)
    batch = template.batch(flat)
    model = _gmn(readout=("node_mean", "global"))
    model.fit_feature_statistics(batch)
    with gmn.probe(model) as p:
        want = p.run(batch)
    on_device = copy.deepcopy(model).to(device)
    with gmn.probe(on_device) as p:
        got = p.run(batch.to(device))
    with gmn.probe(on_device, to_cpu=True) as p:
        kept = p.run(batch.to(device))
    r.true("same layers", list(got) == list(want), len(got))
    r.true("states on device", all(v.device.type == device.type for v in got.values()))
    r.true("to_cpu states on cpu", all(v.device.type == "cpu" for v in kept.values()))
    worst = max((got[k].cpu() - want[k]).abs().max().item() / max(want[k].abs().max().item(),
                                                                   1e-12) for k in want)
    r.items.append(dict(label="rel worst state", value=worst, tol=1e-4, ok=worst <= 1e-4))
    return r


def check_function_samples(device: torch.device) -> Report:
    from gmn.graph import Weights
    from gmn.graph.function_samples import function_samples, with_function_samples
    from gmn.models.siren import image_grid

    r = Report()
    template, flat = siren_params(16)
    points = image_grid(7, 7)
    want = function_samples(Weights(template, flat), points)
    got = function_samples(Weights(template, flat.to(device)), points)
    r.true("on device", got.device.type == device.type)
    r.close("activations", got, want, 1e-4, relative=True)
    batch = template.batch(flat.to(device))
    extended = with_function_samples(batch, Weights.from_graphs(batch), points)
    r.close("with_function_samples", extended.x[:, -points.shape[0]:], want, 1e-4,
            relative=True)
    return r


def check_cka(device: torch.device) -> Report:
    from gmn.cka import CKAGrid, MinibatchGrid, cka, cka_matrix

    r = Report()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 24, generator=g)
    y = x @ torch.randn(24, 16, generator=g) + 0.5 * torch.randn(200, 16, generator=g)
    wide = torch.randn(200, 300, generator=g)  # d > n: the Gram path
    for kernel, method in (("linear", "features"), ("linear", "gram"), ("rbf", "auto")):
        for debiased in (False, True):
            want = cka(x, y, kernel=kernel, debiased=debiased, method=method)
            got = cka(x.to(device), y.to(device), kernel=kernel, debiased=debiased, method=method)
            tag = f"{kernel}/{method}/{'debiased' if debiased else 'biased'}"
            r.true(f"{tag} float64", got.dtype == torch.float64)
            r.close(tag, got, want, 1e-6)
    r.close("linear wide", cka(x.to(device), wide.to(device)), cka(x, wide), 1e-6)
    grid, minibatch, reference = CKAGrid(), MinibatchGrid(), MinibatchGrid()
    for start, stop in ((0, 50), (50, 120), (120, 200)):
        part_x, part_y = x[start:stop], y[start:stop]
        grid.update({"x": part_x.to(device)}, {"y": part_y.to(device)})
        minibatch.update({"x": part_x.to(device)}, {"y": part_y.to(device)})
        reference.update({"x": part_x}, {"y": part_y})
    for debiased in (False, True):
        one_shot = cka(x.to(device), y.to(device), debiased=debiased)
        r.close(f"stream {'debiased' if debiased else 'biased'} vs one-shot",
                grid.compute(debiased).values[0, 0], one_shot, 1e-6)
    r.close("minibatch", minibatch.compute().values, reference.compute().values, 1e-6)
    reps = {"x": x, "y": y}
    want = cka_matrix(reps, reps, debiased=True, permutations=20)
    got = cka_matrix({k: v.to(device) for k, v in reps.items()},
                     {k: v.to(device) for k, v in reps.items()}, debiased=True, permutations=20)
    r.close("matrix values", got.values, want.values, 1e-6)
    r.close("matrix p-values", got.p_values, want.p_values, 0.0)
    return r


def check_fit_inrs(device: torch.device) -> Report:
    from gmn.data.fit import fit_inrs
    from gmn.data.images import load_digits

    r = Report()
    images = load_digits(16).images[:16]  # 8×8 digits resized to 16×16
    options = dict(steps=50, target_psnr=None, seed=0, progress=False)
    want = fit_inrs(images, device="cpu", **options)
    got = fit_inrs(images, device=device, **options)
    again = fit_inrs(images, device=device, **options)
    r.true("results on cpu", got.psnr.device.type == "cpu")
    r.close("psnr dB", got.psnr, want.psnr, 0.5)
    r.info("mean psnr dB", round(float(got.psnr.mean()), 3))
    r.true("all 50 steps", bool((got.steps == 50).all()))
    same = all(torch.equal(got.params[k], again.params[k]) for k in got.params)
    r.info("same seed twice bit-identical", same)
    r.close("same seed twice psnr dB", again.psnr, got.psnr, 0.01)
    return r


def _graph_classifier(template) -> nn.Module:
    """[B, P] SIREN parameters → GMN logits [B, 4]: the benchmark's GMN family in miniature."""
    from gmn.nn.params_to_gmn import ParamsToGraph

    graph = ParamsToGraph(template)
    model = _gmn(out_dim=4, hidden_dim=16, num_layers=1)
    model.fit_feature_statistics(graph(siren_params(56)[1]))  # the check's training INRs
    return nn.Sequential(graph, model)


def _weights(model: nn.Module) -> Tensor:
    return torch.cat([p.detach().reshape(-1).cpu() for p in model.parameters()])


def check_trainer(device: torch.device) -> Report:
    """Per precision: a full run, and a run killed at step 5 resumed from its step-4
    checkpoint, which must end with the full run's weights (cuda: up to atomics' rounding)."""
    from torch.utils.data import TensorDataset

    from gmn.graph import Weights, permute
    from gmn.train import TrainConfig, Trainer, load_checkpoint

    r = Report()
    template, flat = siren_params(56)
    labels = torch.arange(56) % 4
    data = [TensorDataset(flat[a:b], labels[a:b]) for a, b in ((0, 32), (32, 44), (44, 56))]

    def augment(batch, generator):  # the trainer's generator lives on its device
        params, targets = batch
        return permute(Weights(template, params), generator).params, targets

    def crash_at_call_5(batch, generator):
        crash_at_call_5.calls += 1
        if crash_at_call_5.calls == 5:
            raise KeyboardInterrupt
        return augment(batch, generator)

    def train(run_dir: str, transform, **overrides) -> Trainer:
        options = dict(run_dir=run_dir, epochs=2, batch_size=8, lr=1e-2, progress=False,
                       device=str(device), checkpoint_every_steps=2, **overrides)
        trainer = Trainer(lambda: _graph_classifier(template), *data,
                          config=TrainConfig(**options), transform=transform)
        with contextlib.redirect_stdout(io.StringIO()):  # the trainer prints its summary
            trainer.fit()
        return trainer

    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("fp32", "bf16", "fp16"):
            full = train(f"{tmp}/{precision}-full", augment, precision=precision)
            loss = full.summary["test"]["loss"]
            r.true(f"{precision} loss finite", math.isfinite(loss), round(loss, 4))
            r.true(f"{precision} outputs [12, 4]",
                   tuple(full.test_result["outputs"].shape) == (12, 4))
            r.true(f"{precision} predictions [12]",
                   tuple(full.test_result["predictions"].shape) == (12,))
            last = Path(tmp) / f"{precision}-full" / "last.pt"
            r.true(f"{precision} checkpoint", last.exists() and "model" in load_checkpoint(last))
            crash_at_call_5.calls = 0
            try:
                train(f"{tmp}/{precision}-run", crash_at_call_5, precision=precision)
                r.true(f"{precision} crash happened", False)
            except KeyboardInterrupt:
                pass
            resumed = train(f"{tmp}/{precision}-run", augment, precision=precision, resume=True)
            r.true(f"{precision} resumed from step 4",
                   (resumed.resumed_from or {}).get("step") == 4, resumed.resumed_from)
            r.close(f"{precision} resumed weights", _weights(resumed.model), _weights(full.model),
                    1e-3, relative=True)
            r.info(f"{precision} resume bit-identical",
                   torch.equal(_weights(resumed.model), _weights(full.model)))
        r.true("GradScaler on iff cuda fp16", full.scaler.is_enabled() == (device.type == "cuda"))
    return r


def check_augment(device: torch.device) -> Report:
    from gmn.data import augment
    from gmn.graph import Weights, permute
    from gmn.graph.function_samples import network_outputs
    from gmn.models.siren import image_grid

    r = Report()
    template, flat = siren_params(16)
    params = Weights(template, flat)
    transforms = {
        "permutation": augment.RandomPermutation(),
        "noise": augment.GaussianNoise(0.01),
        "dropout": augment.WeightDropout(0.1),
        "scale": augment.RandomScale(),
        "rotation": augment.RandomRotation(),
        "translation": augment.RandomTranslation(),
        "pixel shift": augment.RandomPixelShift(28, 28, 2),
        "compose": augment.Compose([augment.RandomPermutation(), augment.RandomScale()]),
    }
    on_device = params.to(device)
    for name, transform in transforms.items():
        want = transform(params, torch.Generator().manual_seed(3))
        got = transform(on_device, torch.Generator().manual_seed(3))
        r.true(f"{name} on device", got.device.type == device.type)
        worst = (got.params.cpu() - want.params).abs().max().item()
        r.items.append(dict(label=f"{name} cpu-generator vs cpu", value=worst, tol=1e-5,
                            ok=worst <= 1e-5))
        drawn = transform(on_device, torch.Generator(device=device).manual_seed(3))
        r.true(f"{name} device generator", drawn.device == on_device.device)
    coords = image_grid(8, 8, device=device)
    permuted = transforms["permutation"](on_device, torch.Generator().manual_seed(4))
    r.close("permuted SIREN output", network_outputs(permuted, coords),
            network_outputs(on_device, coords), 1e-4, relative=True)
    moved = permute(Weights(template, flat.to(device)), torch.Generator().manual_seed(5)).params
    r.true("permute [N,P] on device", moved.device.type == device.type)
    want = permute(Weights(template, flat), torch.Generator().manual_seed(5)).params
    r.close("permute [N,P] == cpu", moved, want, 0.0)
    return r


CHECKS: list[tuple[str, Callable[[torch.device], Report]]] = [
    ("scatter", check_scatter),
    ("graph_roundtrip", check_graph_roundtrip),
    ("gmn_forward_backward", check_gmn_forward_backward),
    ("gmn_invariance_bf16", check_gmn_invariance_and_bf16),
    ("probe", check_probe),
    ("function_samples", check_function_samples),
    ("cka", check_cka),
    ("fit_inrs", check_fit_inrs),
    ("trainer", check_trainer),
    ("augment", check_augment),
]


# ----------------------------------------------------------------------------- runner
def _format(item: dict) -> str:
    value = item["value"]
    text = f"{value:.3g}" if isinstance(value, float) else str(value)
    if item["tol"] is not None:
        text += f" (≤{item['tol']:g})"
    return f"{'' if item['ok'] else '!'}{item['label']}={text}"


def run_checks(checks, device: torch.device) -> list[dict]:
    """Run each ``(name, check)``; print and return one result per check."""
    results = []
    for name, check in checks:
        start = time.perf_counter()
        try:
            items = check(device).items
            passed, error = all(i["ok"] for i in items) and bool(items), None
        except Exception as exc:  # noqa: BLE001 - a crash is this check's FAIL, not the run's
            items, passed = [], False
            error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        seconds = time.perf_counter() - start
        text = error if error else ", ".join(_format(i) for i in items)
        print(f"{'PASS' if passed else 'FAIL'} {name}: {text} [{seconds:.1f} s]", flush=True)
        results.append(dict(name=name, passed=passed, error=error, items=items,
                            seconds=round(seconds, 3)))
    return results


def cuda_status() -> str | None:
    """None when CUDA can be used, else why not (a sentence)."""
    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        return f"CUDA is not available: this torch ({torch.__version__}) is built for the CPU only"
    return (f"CUDA is not available: torch {torch.__version__} (CUDA {torch.version.cuda}) "
            "sees no GPU")


def main(argv=None, checks=None, prog: str = "python -m gmn.check") -> int:
    """Run the checks (``checks``: ``[(name, check)]``, default :data:`CHECKS`); the exit
    status: 0 all passed, 1 some failed, 2 the device asked for is not there."""
    checks = CHECKS if checks is None else checks
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Does gmn compute the right numbers on this device? Each check compares "
        "it with the CPU.")
    parser.add_argument("--device", help="cuda, cuda:1, cpu, ... (default: cuda when "
                        "available, else cpu)")
    parser.add_argument("--out", help="write every result to this JSON file")
    parser.add_argument("--only", nargs="*", choices=[name for name, _ in checks],
                        help="run only these checks")
    args = parser.parse_args(argv)
    unavailable = cuda_status()
    if args.device is None:
        args.device = "cpu" if unavailable else "cuda"
        if unavailable:
            print(f"{unavailable}; checking the CPU against itself (--device cpu)", flush=True)
    device = torch.device(args.device)
    if device.type == "cuda" and unavailable:
        print(f"{unavailable}; run with --device cpu to check the CPU", file=sys.stderr)
        return 2
    if args.only:
        checks = [(n, c) for n, c in checks if n in args.only]
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        return _run_and_report(checks, device, args.out)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


def _run_and_report(checks, device: torch.device, out: str | None) -> int:
    from gmn.scatter import BACKEND

    environment = dict(device=str(device), torch=torch.__version__,
                       cuda=torch.version.cuda, backend=BACKEND,
                       gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else None)
    print(" ".join(f"{k}={v}" for k, v in environment.items()), flush=True)
    start = time.perf_counter()
    results = run_checks(checks, device)
    failed = [r["name"] for r in results if not r["passed"]]
    works = [r["name"] for r in results if r["passed"]]
    total = time.perf_counter() - start
    print(f"{len(works)}/{len(results)} checks passed on {device} in {total:.1f} s", flush=True)
    print(f"works: {', '.join(works) or 'nothing'}", flush=True)
    if failed:
        print(f"does not work: {', '.join(failed)} (the FAIL lines above say how)", flush=True)
    if out:
        Path(out).write_text(json.dumps(dict(environment=environment, seconds=total,
                                                  checks=results), indent=2, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
