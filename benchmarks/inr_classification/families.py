"""The model families of the study: how each is built, what it reads, where it is probed.

Image families (``mlp``, ``cnn``, ``vit``) read standardised images [B, C, H, W];
parameter families (``gmn``, ``gmn_noaug``, ``gmn_probe``, ``weight_mlp``, ``nfn_np``) read
flat INR parameters [B, P]. ``gmn`` reads the parameter graph alone and trains with random
hidden-neuron permutations of its INRs, ``gmn_noaug`` without (the only difference between
the two). ``gmn_probe`` also reads function samples, each neuron's values on the pixel grid,
so its output neuron sees the image itself. ``nfn_np`` is NFN's invariant network of NP layers
(``gmn.nn.NFNClassifier``), trained with the options of ``NFN_NP``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from torch import nn

from gmn.models.cnn import CNN
from gmn.models.mlp import MLP
from gmn.models.vit import ViT
from gmn.models.weight_mlp import WeightMLP
from gmn.nn import GMNConfig, NFNClassifier
from gmn.nn.params_to_gmn import BUILD_OPTIONS, build_gmn

from .config import DEFAULT_EPOCHS, IMAGE_FAMILIES, BenchmarkConfig
from .data import BenchmarkData
from .gmn_family import (
    OPTIONAL_TRAIN_OPTIONS,
    gmn_augmentation,
    gmn_build_options,
    split_gmn_config,
)


@dataclass
class FamilyPlan:
    """Everything the trainer needs for one family.

    ``inputs`` names the data it reads (``"images"`` or ``"params"``); ``epochs`` is how long
    it trains (``--epochs FAMILY=N``, else ``--epochs N``, else the family's own:
    ``DEFAULT_EPOCHS``, ``NFN_NP``'s; a GMN family: ``gmn_family.split_gmn_config``);
    ``train_options`` override ``--lr``/``--batch-size``; ``transform`` (or None) augments
    training batches;
    ``probe_layers(model)`` names the modules whose outputs are compared with CKA;
    ``architecture`` (JSON-able) names the model and its options, for the run's cache key.
    """

    build: Callable[[], nn.Module]
    inputs: str
    epochs: int
    train_options: dict
    transform: Callable | None
    probe_layers: Callable[[nn.Module], list[str]]
    architecture: dict


def _block_layers(model: nn.Module) -> list[str]:
    """``blocks.0``, ``blocks.1``, …, then ``pool``/``norm`` when present, then ``head``."""
    names = [f"blocks.{i}" for i in range(len(model.blocks))]
    names += [n for n in ("pool", "norm") if hasattr(model, n)]
    return names + ["head"]


# NFN-NP as in its INR experiments (Gaussian Fourier features, NP layers, invariant pooling, an
# MLP head); widths, rate and epochs chosen on the validation set of the digits INRs
# (docs/accuracy.md)
NFN_NP = {
    "model": {"channels": (64, 64, 64), "fourier_size": 32, "fourier_scale": 3.0,
              "dropout": 0.1, "head_hidden": 256, "head_dropout": 0.1},
    "train": {"lr": 1e-3, "weight_decay": 0.01, "batch_size": 32, "epochs": 30,
              "warmup_fraction": 0.05},
}


def _nfn_layers(model: nn.Module) -> list[str]:
    """Every NP block of an NFN (``gmn.probe`` pools their features per layer) and the head."""
    return [f"nfn.blocks.{i}" for i in range(len(model.nfn.blocks))] + ["head"]


def _gmn_layers(model: nn.Module) -> list[str]:
    """Every message-passing layer of the GMN, its readout and its head (the logits)."""
    return [f"gmn.layers.{i}" for i in range(len(model.gmn.layers))] + ["gmn.readout", "gmn.head"]


def plan_family(family: str, data: BenchmarkData, config: BenchmarkConfig) -> FamilyPlan:
    """The :class:`FamilyPlan` of ``family`` on ``data``."""
    shape, classes = tuple(data.images.shape[1:]), data.num_classes
    if family in IMAGE_FAMILIES:
        model, options = {
            "mlp": (MLP, {"hidden": (256, 256)}),
            "cnn": (CNN, {"channels": (32, 64, 128)}),  # with 2 blocks: 79 % on 28×28 MNIST
            "vit": (ViT, {"patch_size": 2 if shape[1] <= 16 else 4}),
        }[family]
        return FamilyPlan(
            lambda: model(shape, classes, **options),
            "images",
            config.family_epochs.get(family, config.epochs or DEFAULT_EPOCHS),
            {},
            None,
            _block_layers,
            {"model": model.__name__, **options},
        )
    train_params = data.params[data.split["train"]]
    if family == "weight_mlp":
        mean, std = train_params.mean(0), train_params.std(0).clamp_min(1e-6)
        hidden, dropout = (256, 256), 0.1
        return FamilyPlan(
            lambda: WeightMLP(train_params.shape[1], classes, hidden, dropout, mean, std),
            "params",
            config.family_epochs.get(family, config.epochs or DEFAULT_EPOCHS),
            {},
            None,  # permuting hidden neurons scrambles a flat weight vector's coordinates
            _block_layers,
            {"model": "WeightMLP", "hidden": hidden, "dropout": dropout},
        )
    if family == "nfn_np":
        options, train_options = NFN_NP["model"], dict(NFN_NP["train"])
        own_epochs = train_options.pop("epochs")
        return FamilyPlan(
            lambda: NFNClassifier(data.template, classes, **options),
            "params",
            config.family_epochs.get(family, config.epochs or own_epochs),
            train_options,
            None,  # NP layers are exactly invariant: a permutation changes nothing
            _nfn_layers,
            {"model": "NFNClassifier", **options, "train": train_options},
        )
    model_options, train_options = split_gmn_config(
        config.gmn_config, family, config.epochs, config.family_epochs.get(family))
    epochs = train_options.pop("epochs")
    model_options = gmn_build_options(family, model_options)
    raw_affine = (data.param_scale, data.param_shift)
    transform = gmn_augmentation(
        data.template, shape[1:], train_options.pop("shift_pixels"), family != "gmn_noaug",
        raw_affine, train_options.pop("input_noise"), train_params.std(0),
        train_options.pop("sign_flip", OPTIONAL_TRAIN_OPTIONS["sign_flip"]),
    )
    return FamilyPlan(
        lambda: build_gmn(
            data.template,
            classes,
            train_params,
            model_options,
            shape[1:],
            raw_affine=raw_affine,
        ),
        "params",
        epochs,
        train_options,
        transform,
        _gmn_layers,
        {"model": "GMN", "config": gmn_config_key(GMNConfig.from_kwargs(**{
            k: v for k, v in model_options.items() if k not in BUILD_OPTIONS}))},
    )


def gmn_config_key(config: GMNConfig) -> dict:
    """Every field of ``config`` (defaults resolved, so a cached run is not reused after a
    default of ``gmn.nn`` changed) except the sizes set from the data and the vocabularies,
    JSON-able: a run's cache key."""
    resolved = asdict(config)
    # set by build_gmn from the data, or by gmn.graph.vocab: its tables grow by rows that
    # start at zero, which change no number of a network that does not use them
    for size in ("out_dim", "node_in_dim", "num_node_types", "num_edge_types",
                 "num_activations"):
        resolved.pop(size)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in resolved.items()}
