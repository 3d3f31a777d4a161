"""Diagnosis of the weights-only GMN on the benchmark's cached digits INRs (docs/accuracy.md).

Loads (or fits, ~20 s) the default benchmark's INRs once and trains one GMN variant on the
parameter graph alone (no function samples), printing one JSON line:

    python -m benchmarks.weights_only_diagnosis --spread             # deviation scales, movement
    python -m benchmarks.weights_only_diagnosis --overfit 150 \\
        --opts '{"fourier_frequencies": 0, "edge_message": "additive", "dropout": 0}'
    python -m benchmarks.weights_only_diagnosis --epochs 20 --opts '{}'
    python -m benchmarks.weights_only_diagnosis --linear-probe      # what canonicalisation keeps

``--overfit N``: N full-batch AdamW steps on the first 64 training INRs (the loss every
N/8 steps, and the gradient norm of each block at the first and last step); otherwise
``--epochs`` of minibatch training with warm-up + cosine: the model is selected on validation
accuracy alone, and tested once, at the end, at its best validation epoch. Sign flips act on
the INRs' own parameters (``gmn.data.InRawSpace``), so they keep every INR's function.
``--opts``: keyword options of ``gmn.nn.GMN``. ``--linear-probe``:
test accuracy of a logistic regression on per-coordinate standardised weights (what the weight
MLP reads; not permutation invariant) and on the canonically standardised weights of
``gmn.nn.canonical`` (invariant), with slots by bias rank only and with signatures; and the
test R² of a ridge regression from the per-coordinate standardised weights to the image (its
penalty chosen on validation): how nearly linear the image is in the weights.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import shlex
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from benchmarks.inr_classification.cli import parse_config
from benchmarks.inr_classification.data import prepare_data
from gmn.data.augment import (
    Compose,
    GaussianNoise,
    InRawSpace,
    RandomPermutation,
    RandomSignFlip,
    mixup,
)
from gmn.graph.weights import Weights
from gmn.nn import GMN
from gmn.nn.params_to_gmn import ParamsToGraph


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--init", default="shared", choices=("shared", "independent"))
    ap.add_argument("--data", default="", help="more options of the benchmark's command line "
                    "choosing the INRs, e.g. \"--dataset mnist --root DIR\" (default: digits)")
    ap.add_argument("--out", default=None, help="default: results/inr-digits-INIT")
    ap.add_argument("--opts", default="{}", help="GMN options, JSON")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--overfit", type=int, default=0)
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--clip", type=float, default=0.0, help="gradient-norm clip (0: none)")
    ap.add_argument("--fit-n", type=int, default=0,
                    help="fit input statistics on the first N training INRs (0: all; the "
                    "benchmark's build_gmn uses 512)")
    ap.add_argument("--warmup", type=float, default=0.05, help="warm-up fraction of the steps")
    ap.add_argument("--permute", action="store_true", help="random hidden-neuron permutations")
    ap.add_argument("--sign-flip", action="store_true",
                    help="random hidden-neuron sign flips of the raw parameters "
                    "(function-preserving for the sine)")
    ap.add_argument("--canonical-signs", action="store_true",
                    help="the GMN reads every INR in its canonical signs and phases "
                    "(gmn.graph.canonicalize_signs)")
    ap.add_argument("--mixup", type=float, default=0.0,
                    help="weight-space mixup strength in (0, 1] (0: none; gmn.data.mixup)")
    ap.add_argument("--noise", type=float, default=0.0,
                    help="Gaussian input noise, in units of each parameter's training std")
    ap.add_argument("--target", default="label", choices=("label", "image"),
                    help="label: classify (accuracy); image: regress the image the INR was "
                    "fitted to from its weights alone (R² on view 0 of held-out images), "
                    "whether the weights say what the INR draws")
    ap.add_argument("--spread", action="store_true", help="print deviation scales and exit")
    ap.add_argument("--linear-probe", action="store_true",
                    help="logistic regression on standardised weights, then exit")
    return ap.parse_args(argv)


def spread(data) -> dict:
    """Per layer tensor: median and max over its entries of (std across training INRs) /
    (std of the whole tensor), on the per-layer standardised parameters the GMN reads."""
    stacked = Weights(data.template, data.params[data.split["train"]]).stacked()
    out = {}
    for key, value in stacked.items():
        value = value.flatten(1)
        ratio = value.std(0) / value.std()
        out[key] = {"median": round(float(ratio.median()), 4), "max": round(float(ratio.max()), 4)}
    return out


def movement(data) -> dict:
    """Per layer tensor: the median over view-0 INRs of ``‖θ − θ₀‖ / ‖θ₀‖``, how far fitting
    moved each INR from its own initialisation θ₀ (drawn again from the dataset's seeds)."""
    from gmn.data.batched_siren import init_params
    from gmn.data.fit import FitRecipe, inr_seeds

    dataset = data.train_set.dataset
    manifest = dataset.info["manifest"]
    first = (dataset.info["view"] == 0).nonzero().squeeze(1)
    recipe = FitRecipe.from_dict(manifest["fit"])
    seeds = inr_seeds(recipe, manifest["seed"], dataset.info["image_ids"][first],
                      dataset.info["view"][first])
    start = init_params(recipe.layout, seeds)
    fitted = dataset.weights(first).stacked()
    out = {}
    for key, value in fitted.items():
        change = (value - start[key]).flatten(1).norm(dim=1) / start[key].flatten(1).norm(dim=1)
        out[key] = round(float(change.median()), 4)
    return out


def logistic_regression_accuracy(features: Tensor, labels: Tensor, split: dict) -> float:
    """Test accuracy of a logistic regression (400 full-batch Adam steps, seeded) on [N, F]
    features standardised with training statistics."""
    train, test = split["train"], split["test"]
    mean, std = features[train].mean(0), features[train].std(0).clamp_min(1e-8)
    features = (features - mean) / std
    torch.manual_seed(0)
    classifier = nn.Linear(features.shape[1], int(labels.max()) + 1)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(400):
        loss = nn.functional.cross_entropy(classifier(features[train]), labels[train])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float((classifier(features[test]).argmax(1) == labels[test]).float().mean())


def ridge_image_r2(features: Tensor, pixels: Tensor, split: dict) -> float:
    """Test R² of a ridge regression from [N, F] features to the [N, D] images (its penalty
    chosen on the validation images), against the training images' mean."""
    import numpy as np
    from sklearn.linear_model import Ridge

    x, y = features.double().numpy(), pixels.double().numpy()
    train, val, test = (split[k].numpy() for k in ("train", "val", "test"))

    def r2(model, rows):
        error = ((model.predict(x[rows]) - y[rows]) ** 2).sum()
        return 1.0 - error / ((y[rows] - y[train].mean(0)) ** 2).sum()

    fits = [Ridge(alpha=alpha).fit(x[train], y[train]) for alpha in np.logspace(-3, 3, 13)]
    best = max(fits, key=lambda model: r2(model, val))
    return float(r2(best, test))


def canonical_features(template, params: Tensor, train: Tensor, refinements: int) -> Tensor:
    """[N, E + N_nodes]: every INR's canonically standardised weights and biases
    (:class:`gmn.nn.CanonicalStandardize` fitted on ``train``), ordered by canonical key."""
    from gmn.graph.parameter_graph import NODE_FEATURES
    from gmn.nn.canonical import CanonicalStandardize, canonical_keys

    canonical = CanonicalStandardize(len(NODE_FEATURES), template.edge_dim,
                                     refinements=refinements)
    canonical.fit(template.batch(params[train]))
    graphs = template.batch(params)
    slots = canonical.slots(graphs)
    node_z, edge_z = canonical(graphs, slots)
    node_key, edge_key = canonical_keys(graphs, slots)
    n = len(params)
    columns = []
    for z, key in ((edge_z[:, 0], edge_key), (node_z[:, 0], node_key)):
        z, key = z.view(n, -1), key.view(n, -1)
        columns.append(torch.gather(z, 1, key.argsort(1)))
    return torch.cat(columns, 1)


def grad_norms(model: GMN) -> dict[str, float]:
    blocks = [("node_encoder", model.node_encoder), ("edge_encoder", model.edge_encoder),
              *[(f"layers.{i}", layer) for i, layer in enumerate(model.layers)],
              ("head", model.head)]
    out = {}
    for name, block in blocks:
        squares = [p.grad.norm() ** 2 for p in block.parameters() if p.grad is not None]
        out[name] = float(sum(squares) ** 0.5) if squares else 0.0
    return out


def main(argv=None) -> None:
    a = parse_args(argv)
    torch.manual_seed(a.seed)
    data_options = ["--inr-init", a.init, "--out", a.out or f"results/inr-digits-{a.init}",
                    "--no-progress", *shlex.split(a.data)]
    config = parse_config(data_options)
    data = prepare_data(config, Path(config.out))
    if a.spread:
        print(json.dumps({"init": a.init, "spread": spread(data),
                          "moved_from_own_initialisation": movement(data)}))
        return
    if a.linear_probe:
        params, labels, split = data.params, data.labels, data.split
        result = {"init": a.init,
                  "per_coordinate": logistic_regression_accuracy(params, labels, split)}
        for name, refinements in (("canonical_bias_rank", 0), ("canonical_signatures", 2)):
            features = canonical_features(data.template, params, split["train"], refinements)
            result[name] = logistic_regression_accuracy(features, labels, split)
        result["image_r2_per_coordinate"] = ridge_image_r2(params, data.images.flatten(1), split)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                          for k, v in result.items()}))
        return
    params, labels = data.params, data.labels
    train, val, test = (data.split[k] for k in ("train", "val", "test"))
    rows = data.train_set  # every view of the training images
    image_of = rows.indices // config.views
    pixels = data.images.flatten(1)
    regress = a.target == "image"
    if regress and a.mixup:
        raise SystemExit("--mixup mixes class labels; it does not apply to --target image")
    options = json.loads(a.opts)
    raw_affine = (data.param_scale, data.param_shift)
    to_graph = ParamsToGraph(data.template, None, *raw_affine, canonical_signs=a.canonical_signs)
    model = GMN(out_dim=pixels.shape[1] if regress else data.num_classes, **options)
    with torch.no_grad():
        g = to_graph(params[train[:a.fit_n]] if a.fit_n else params[train])
        model.fit_feature_statistics(g)
    optimizer = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.wd)
    loss_fn = nn.MSELoss() if regress else nn.CrossEntropyLoss(label_smoothing=a.label_smoothing)
    generator = torch.Generator().manual_seed(a.seed)
    start = time.time()
    if a.overfit:
        xb = params[train[:64]]
        yb = pixels[train[:64]] if regress else labels[train[:64]]
        losses, norms = [], {}
        for step in range(a.overfit):
            model.train()
            loss = loss_fn(model(to_graph(xb)), yb)
            optimizer.zero_grad()
            loss.backward()
            if step in (0, a.overfit - 1):
                norms[step] = {k: float(f"{v:.2e}") for k, v in grad_norms(model).items()}
            optimizer.step()
            losses.append(round(loss.item(), 4))
        every = max(1, a.overfit // 8)
        print(json.dumps({"overfit_steps": a.overfit, "opts": options, "lr": a.lr,
                          "loss": losses[::every] + [losses[-1]], "grad_norms": norms,
                          "seconds": round(time.time() - start, 1)}))
        return
    total = a.epochs * math.ceil(len(rows) / a.bs)
    warm = max(1, int(a.warmup * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1, s / total))),
    )

    @torch.no_grad()
    def score(idx):
        """Accuracy, or R² of the predicted images against the training images' mean."""
        model.eval()
        right = squared = 0.0
        for i in range(0, len(idx), 256):
            j = idx[i:i + 256]
            out = model(to_graph(params[j]))
            if regress:
                squared += ((out - pixels[j]) ** 2).sum().item()
            else:
                right += (out.argmax(1) == labels[j]).sum().item()
        if regress:
            spread = ((pixels[idx] - pixels[train].mean(0)) ** 2).sum().item()
            return 1.0 - squared / spread
        return right / len(idx)

    augment = Compose(
        ([GaussianNoise(a.noise * params[train].std(dim=0))] if a.noise else [])
        + ([InRawSpace(RandomSignFlip(), *raw_affine)] if a.sign_flip else [])
        + ([RandomPermutation()] if a.permute else []))
    best, history = (-1.0, None, -1), []
    for epoch in range(a.epochs):
        model.train()
        order = torch.randperm(len(rows), generator=generator)
        total_loss = 0.0
        for i in range(0, len(order), a.bs):
            positions = order[i:i + a.bs]
            xb = torch.stack([p for p, _ in rows.__getitems__(positions.tolist())])
            j = image_of[positions]
            targets = pixels[j] if regress else labels[j]
            if a.mixup:
                mixed, targets = mixup(Weights(data.template, xb), targets, data.num_classes,
                                       generator, a.mixup)
                xb = mixed.params
            xb = augment(Weights(data.template, xb, allow_nonfinite=True), generator).params
            loss = loss_fn(model(to_graph(xb)), targets)
            optimizer.zero_grad()
            loss.backward()
            if a.clip:
                nn.utils.clip_grad_norm_(model.parameters(), a.clip)
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * len(j)
        v = score(val)
        history.append([round(total_loss / len(rows), 3), round(v, 3)])
        print(f"epoch {epoch}: train loss, val {history[-1]}", file=sys.stderr, flush=True)
        if v > best[0]:
            best = (v, copy.deepcopy(model.state_dict()), epoch)
    model.load_state_dict(best[1])
    tested = score(test)  # once, at the best validation epoch
    print(json.dumps({"opts": options, "init": a.init, "target": a.target,
                      "training_inrs": len(rows), "lr": a.lr, "epochs": a.epochs,
                      "wd": a.wd, "bs": a.bs, "label_smoothing": a.label_smoothing,
                      "clip": a.clip, "fit_n": a.fit_n, "warmup": a.warmup,
                      "permute": a.permute, "sign_flip": a.sign_flip, "mixup": a.mixup,
                      "noise": a.noise,
                      "canonical_signs": a.canonical_signs,
                      "seed": a.seed, "best_val": best[0],
                      "test_at_best_val": tested, "best_epoch": best[2],
                      "history_train_loss_val": history,
                      "seconds": round(time.time() - start, 1)}))


if __name__ == "__main__":
    main()
