"""The editing families: how each is built, what it reads, how it trains, where it is probed.

Parameter families (``weight_mlp``, ``gmn``, ``gmn_probe``, ``nfn_np``) read the standardised
INR parameters [B, P] and output edited parameters, which :class:`Rendered` draws on the
pixel grid (differentiably, ``gmn.data.render``): every family outputs images, and the loss
is the mean squared error against the dilated image (function space). Image families
(``mlp``, ``cnn``) read the input INR's rendering and output the edited image.

The GMN families are built from ``EDIT_GMN``, a complete ``gmn.nn.GMNConfig`` (no option is
left to the library's defaults), with ``--gmn-config`` keys over it.
"""

from __future__ import annotations

from torch import Tensor, nn

from benchmarks.inr_classification.families import FamilyPlan, gmn_config_key
from gmn.data import render
from gmn.models.editors import ImageEditCNN, ImageEditMLP, WeightMLPEditor
from gmn.nn import GMNConfig, NFNEditor, build_editor

from .config import EditingConfig
from .data import EditingData

EDIT_GMN = {  # every behavioural option of gmn.nn.GMNConfig, spelled out
    "hidden_dim": 64,
    "edge_dim": 32,
    "num_layers": 2,
    "aggregations": ("mean",),
    "use_global": False,
    "norm": "layer",
    "dropout": 0.0,
    "activation": "silu",
    "readout": ("node_mean",),  # not used: an editor reads node and edge states
    "attention_heads": 4,
    "bilinear_readout_dim": None,
    "bilinear_readout_channels": 1,
    "fourier_frequencies": 0,
    "fourier_min": 1.0,
    "fourier_max": 300.0,
    "edge_message": "bilinear",
    "rank_embedding": True,
    "canonical_standardization": True,
}
NFN_EDIT = {"channels": (64, 64, 64), "fourier_size": 32, "fourier_scale": 3.0, "dropout": 0.0}
WEIGHT_MLP = {"hidden": (256, 256), "dropout": 0.1}
IMAGE_CNN = {"hidden": (32, 32, 32)}
IMAGE_MLP = {"hidden": (256, 256)}
# training of the metanetworks (the image families and the weight MLP: --epochs, --lr,
# --batch-size): rates and widths chosen on the validation set of the digits INRs (seed 0),
# epochs within the default run's ten minutes (docs/tasks.md)
TRAINING = {
    "gmn": {"lr": 1e-2, "weight_decay": 0.01, "batch_size": 32, "epochs": 20,
            "warmup_fraction": 0.05},
    "gmn_probe": {"lr": 1e-2, "weight_decay": 0.01, "batch_size": 32, "epochs": 10,
                  "warmup_fraction": 0.05},
    "nfn_np": {"lr": 1e-3, "weight_decay": 0.01, "batch_size": 32, "epochs": 15,
               "warmup_fraction": 0.05},
}


class Rendered(nn.Module):
    """``editor`` [B, P] -> [B, P] standardised parameters, then the edited INRs drawn on the
    H×W pixel grid: [B, C, H, W]. ``raw``: standardised parameters -> ``Weights``."""

    def __init__(self, editor: nn.Module, data: EditingData):
        super().__init__()
        self.editor = editor
        self.raw = data.raw
        self.height, self.width = data.image_size

    def forward(self, params: Tensor) -> Tensor:
        return render(self.raw(self.editor(params)), self.height, self.width)


def gmn_options(config: EditingConfig, family: str = "gmn") -> tuple[GMNConfig, dict]:
    """A GMN family's model (``EDIT_GMN``) and training (``TRAINING[family]``) options, with
    the ``--gmn-config`` keys over them (training keys: those of ``TRAINING["gmn"]``)."""
    train = {k: v for k, v in config.gmn_config.items() if k in TRAINING["gmn"]}
    model = {k: v for k, v in config.gmn_config.items() if k not in TRAINING["gmn"]}
    return GMNConfig.from_kwargs(**{**EDIT_GMN, **model}), {**TRAINING[family], **train}


def _prefixed(names, prefix: str = "editor.") -> list[str]:
    return [prefix + name for name in names]


def plan_family(family: str, data: EditingData, config: EditingConfig) -> FamilyPlan:
    """The :class:`FamilyPlan` of a trained family."""
    shape = tuple(data.inputs.shape[1:])
    if family == "cnn":
        return FamilyPlan(lambda: ImageEditCNN(shape[0], **IMAGE_CNN), "images", config.epochs,
                          {}, None,
                          lambda m: [f"blocks.{i}" for i in range(len(m.blocks))] + ["head"],
                          {"model": "ImageEditCNN", **IMAGE_CNN})
    if family == "mlp":
        return FamilyPlan(lambda: ImageEditMLP(shape, **IMAGE_MLP), "images", config.epochs,
                          {}, None,
                          lambda m: _mlp_layers(m, ""), {"model": "ImageEditMLP", **IMAGE_MLP})
    inrs = data.inrs
    train_params = inrs.params[inrs.split["train"]]
    if family == "weight_mlp":
        mean, std = train_params.mean(0), train_params.std(0).clamp_min(1e-6)
        build = lambda: WeightMLPEditor(train_params.shape[1], mean=mean, std=std,  # noqa: E731
                                        **WEIGHT_MLP)
        return FamilyPlan(lambda: Rendered(build(), data), "params", config.epochs, {}, None,
                          lambda m: _mlp_layers(m.editor), {"model": "WeightMLPEditor",
                                                            **WEIGHT_MLP})
    if family == "nfn_np":
        train = dict(TRAINING[family])
        return FamilyPlan(lambda: Rendered(NFNEditor(inrs.template, **NFN_EDIT), data),
                          "params", train.pop("epochs"), train, None, _nfn_layers,
                          {"model": "NFNEditor", **NFN_EDIT, "train": TRAINING[family]})
    if family in ("gmn", "gmn_probe"):
        gmn, train = gmn_options(config, family)
        samples = data.image_size if family == "gmn_probe" else None
        raw_affine = (inrs.param_scale, inrs.param_shift)
        return FamilyPlan(
            lambda: Rendered(build_editor(inrs.template, gmn, train_params, mode="delta",
                                          image_size=samples, raw_affine=raw_affine), data),
            "params", train["epochs"], {k: v for k, v in train.items() if k != "epochs"}, None,
            _gmn_layers,
            {"model": "GMNEditor", "function_samples": samples is not None,
             "config": gmn_config_key(gmn),
             "train": train},
        )
    raise ValueError(f"{family!r} is not a trained editing family")


def _mlp_layers(model: nn.Module, prefix: str = "editor.") -> list[str]:
    names = [f"mlp.blocks.{i}" for i in range(len(model.mlp.blocks))] + ["mlp.head"]
    return _prefixed(names, prefix)


def _gmn_layers(model: nn.Module) -> list[str]:
    """Every message-passing layer of the editor's GMN and its parameter head."""
    return _prefixed([f"gmn.layers.{i}" for i in range(len(model.editor.gmn.layers))]
                     + ["head"])


def _nfn_layers(model: nn.Module) -> list[str]:
    """Every NP block of the editor's NFN and its last NP layer (``gmn.probe`` pools each
    one's features per layer)."""
    return _prefixed([f"nfn.blocks.{i}" for i in range(len(model.editor.nfn.blocks))] + ["out"])
