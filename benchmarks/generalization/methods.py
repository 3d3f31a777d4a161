"""The three predictors. Each takes (zoo, split, targets [M], seed, options) and returns the
predicted test-split targets, in the order of ``split["test"]``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Batch

from gmn.graph.weight_statistics import weight_statistics
from gmn.nn import GMN, zoo_gmn_config
from gmn.train import TrainConfig, Trainer
from gmn.zoo.store import ModelZoo


def _features(zoo: ModelZoo, indices: Tensor, layers: str) -> np.ndarray:
    """Per-layer weight statistics [n, F] of ``indices`` (rows in the order given)."""
    rows = torch.empty(len(indices), dtype=torch.long)
    blocks = []
    position = {int(m): i for i, m in enumerate(indices)}
    start = 0
    for _, members, weights in zoo.grouped(indices):
        blocks.append(weight_statistics(weights.stacked(), layers))
        rows[[position[int(m)] for m in members]] = torch.arange(start, start + len(members))
        start += len(members)
    return torch.cat(blocks)[rows].numpy()


def statistics_baseline(zoo, split, targets, seed, options) -> np.ndarray:
    """Unterthiner et al.'s per-layer statistics + gradient boosted trees."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    layers = "all" if len({zoo.architecture_of[i] for i in split["train"].tolist()}) == 1 \
        and len({zoo.architecture_of[i] for i in split["test"].tolist()}) == 1 else "slots"
    model = HistGradientBoostingRegressor(random_state=seed)
    model.fit(_features(zoo, split["train"], layers), targets[split["train"]].numpy())
    return model.predict(_features(zoo, split["test"], layers))


def flat_mlp(zoo, split, targets, seed, options) -> np.ndarray | None:
    """An MLP on the flattened, standardised weights; None when shapes differ."""
    from sklearn.neural_network import MLPRegressor

    used = split["train"].tolist() + split["test"].tolist()
    if len({zoo.architecture_of[i] for i in used}) != 1:
        return None

    normalization = zoo.normalization(split["train"])  # per layer, from the train split

    def matrix(indices):
        (arch, members, weights), = zoo.grouped(indices)
        return normalization[arch](weights).params.numpy()

    model = MLPRegressor(hidden_layer_sizes=(64,), alpha=1e-1, early_stopping=True,
                         max_iter=500, random_state=seed)
    model.fit(matrix(split["train"]), targets[split["train"]].numpy())
    return model.predict(matrix(split["test"]))


def _graph_list(zoo: ModelZoo, indices: Tensor, y: Tensor) -> list:
    """One parameter graph per model, in the order of ``indices``, with ``y`` as label."""
    batch, order = zoo.graphs(indices)
    position = {int(m): i for i, m in enumerate(indices)}
    graphs: list = [None] * len(indices)
    for graph, model in zip(batch.to_data_list(), order.tolist()):
        graph.y = y[position[model]].reshape(1).float()
        graphs[position[model]] = graph
    return graphs


def _mse(outputs: Tensor, targets: Tensor) -> Tensor:
    return F.mse_loss(outputs.squeeze(-1), targets)


def gmn_predictor(zoo, split, targets, seed, options) -> np.ndarray:
    """The zoo GMN preset (``gmn.nn.zoo_gmn_config``, with ``--hidden``, ``--layers`` and
    ``--gmn-config`` on top) on the raw parameter graphs (weights only), trained with MSE on
    standardised targets; the best validation epoch is kept."""
    mean, std = targets[split["train"]].mean(), targets[split["train"]].std()
    sets = {name: _graph_list(zoo, idx, (targets[idx] - mean) / std)
            for name, idx in split.items()}
    training_graphs = Batch.from_data_list(sets["train"])

    def build():
        model = GMN(config=zoo_gmn_config(**{"hidden_dim": options["hidden"],
                                             "num_layers": options["layers"],
                                             **options.get("gmn_config", {})}))
        model.fit_feature_statistics(training_graphs)
        return model

    config = TrainConfig(run_dir=str(Path(options["run_dir"]) / f"gmn-{seed}"), seed=seed,
                         epochs=options["epochs"], batch_size=32, lr=options["lr"],
                         weight_decay=1e-4, progress=False, tensorboard=False,
                         print_summary=False,
                         device=options["device"], monitor="val_loss")
    trainer = Trainer(build, sets["train"], sets["val"], loss_fn=_mse, config=config)
    trainer.fit()
    outputs = trainer.evaluate(sets["test"], return_outputs=True)["outputs"].squeeze(-1)
    return (outputs.double() * std + mean).numpy()


METHODS = {"gmn": gmn_predictor, "statistics_gbt": statistics_baseline, "flat_mlp": flat_mlp}
