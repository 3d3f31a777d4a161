"""Probe two models and compare their layers with CKA.

An MLP and a CNN are trained briefly on scikit-learn's 8×8 digits; ``gmn.probe`` records
every block's output on the test images and ``gmn.cka.cka_matrix`` compares each MLP
layer with each CNN layer (debiased linear CKA with permutation p-values). The heatmap is
written to ``--out``.

Run: python examples/compare_representations.py [--out cka_mlp_cnn.png]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

import gmn
from gmn.cka import cka_matrix, plot_cka
from gmn.data.images import load_digits
from gmn.models.cnn import CNN
from gmn.models.mlp import MLP


def train(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, epochs: int = 5):
    """A few epochs of Adam on minibatches of 64 (seeded by the caller)."""
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        for batch in torch.randperm(len(images)).split(64):
            optimiser.zero_grad()
            F.cross_entropy(model(images[batch]), labels[batch]).backward()
            optimiser.step()
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="cka_mlp_cnn.png")
    args = parser.parse_args()

    torch.manual_seed(0)
    digits = load_digits()
    images = (digits.images - digits.images.mean()) / digits.images.std()
    order = torch.randperm(len(images))
    train_idx, test_idx = order[:1400], order[1400:]
    shape = tuple(images.shape[1:])
    mlp = train(MLP(shape, 10, hidden=(128, 128)), images[train_idx], digits.labels[train_idx])
    cnn = train(CNN(shape, 10, channels=(16, 32)), images[train_idx], digits.labels[train_idx])

    test_images, test_labels = images[test_idx], digits.labels[test_idx]
    states = {}
    for name, model, layers in (
        ("mlp", mlp, ["blocks.0", "blocks.1", "head"]),
        ("cnn", cnn, ["blocks.0", "blocks.1", "pool", "head"]),
    ):
        with torch.no_grad(), gmn.probe(model, layers=layers) as recorder:
            accuracy = (model(test_images).argmax(1) == test_labels).float().mean()
        states[name] = recorder.states()  # {layer: Tensor[n_test, d]}
        print(
            f"{name}: test accuracy {accuracy:.3f}, probed "
            + ", ".join(f"{k} {tuple(v.shape)}" for k, v in states[name].items())
        )

    matrix = cka_matrix(states["mlp"], states["cnn"], debiased=True, permutations=50)
    print(f"\n{matrix.label} (rows: MLP layers, columns: CNN layers)")
    print("          " + "".join(f"{c:>10}" for c in matrix.col_names))
    for row, values in zip(matrix.row_names, matrix.values.tolist()):
        print(f"{row:>10}" + "".join(f"{v:10.3f}" for v in values))
    print(f"largest permutation p-value: {matrix.p_values.max():.3f}")
    plot_cka(matrix, args.out, ylabel="MLP", xlabel="CNN")
    print(f"heatmap: {args.out}")


if __name__ == "__main__":
    main()
