"""The GMN families: the one place that decides how the benchmark builds and trains a GMN.

A GMN reads a batch of flat INR parameter vectors [B, P]; :class:`ParamsToGraph` turns them
into a batch of parameter graphs with ``GraphTemplate`` (vectorised, no per-sample Python
work), so the GMN and the weight-space MLP share one dataset and one augmentation.

``gmn`` and ``gmn_noaug`` read the parameter graph alone, with :class:`gmn.nn.GMN`'s own
defaults (the best weights-only configuration, ``docs/accuracy.md``). ``gmn_probe`` also
gets **probe features**: each neuron's values at the H×W pixel-centre coordinates the INRs
were fitted on (``gmn.models.siren.image_grid``), appended to the node features ``x`` by
``gmn.features.neuron_activations``: K = H·W extra columns. They are computed from the
parameters and permute with the hidden neurons (the GMN stays permutation invariant), but
they are function samples: the output neuron's probe features are the image itself.

Every GMN family trains with weight-space augmentation (:func:`gmn_augmentation`): every INR
of a training batch is moved by up to ``shift_pixels`` whole pixels (its first-layer bias,
see ``gmn.data.augment.RandomPixelShift``), and ``gmn``/``gmn_probe`` (not ``gmn_noaug``)
also permute its hidden neurons at random. ``"auto"`` shifts by one pixel per 28 pixels of
the shorter image side: 1 on MNIST and CIFAR-10, 0 on 8×8 digits, where one pixel is an
eighth of the picture and a shifted INR shows a row it was never fitted on.

``--gmn-config`` overrides the defaults below for every GMN family: keys of
:class:`gmn.nn.GMNConfig` configure the model, keys of ``GMN_TRAIN_DEFAULTS`` its training.
Whether probe features are used is decided by the family, never by ``--gmn-config``.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import torch
from torch import Tensor, nn

GMN_MODEL_DEFAULTS = {}  # the weights-only GMN: gmn.nn.GMNConfig's defaults
GMN_PROBE_MODEL_DEFAULTS = {  # the probe-feature GMN as measured before the weights-only one
    "hidden_dim": 64,
    "num_layers": 2,
    "dropout": 0.2,
    "readout": ["output_mean", "node_mean"],
    "fourier_frequencies": 0,
    "edge_message": "additive",
    "rank_embedding": False,
    "canonical_standardization": False,
}
GMN_TRAIN_DEFAULTS = {  # the weights-only GMN (docs/accuracy.md)
    "lr": 1e-2,
    "weight_decay": 0.05,
    "batch_size": 32,
    "epochs": 40,
    "warmup_fraction": 0.05,
    "shift_pixels": "auto",
}
GMN_PROBE_TRAIN_DEFAULTS = {  # "epochs": None trains for --epochs, like the image models
    **GMN_TRAIN_DEFAULTS, "lr": 3e-3, "batch_size": 64, "epochs": None,
}


def split_gmn_config(overrides: dict, family: str = "gmn") -> tuple[dict, dict]:
    """``--gmn-config`` → (GMN build options, training options) of ``family``, each over its
    defaults.

    The build options are ``probe_features`` (decided by the family: true for ``gmn_probe``
    only) plus the GMN keyword options; unknown model keys are rejected by
    ``GMNConfig.from_kwargs`` with the valid list.
    """
    if family not in ("gmn", "gmn_noaug", "gmn_probe"):
        raise ValueError(f"{family!r} is not a GMN family (gmn, gmn_noaug, gmn_probe)")
    if "probe_features" in overrides:
        raise ValueError(
            "--gmn-config probe_features is decided by the family: gmn and gmn_noaug read the "
            "parameter graph alone, gmn_probe adds probe features (choose with --families)"
        )
    train = {k: v for k, v in overrides.items() if k in GMN_TRAIN_DEFAULTS}
    model = {k: v for k, v in overrides.items() if k not in GMN_TRAIN_DEFAULTS}
    probes = family == "gmn_probe"
    defaults = GMN_PROBE_MODEL_DEFAULTS if probes else GMN_MODEL_DEFAULTS
    train_defaults = GMN_PROBE_TRAIN_DEFAULTS if probes else GMN_TRAIN_DEFAULTS
    return (
        {"probe_features": probes, **defaults, **model},
        {**train_defaults, **train},
    )


def probe_points(template, image_size: tuple[int, int] | None) -> Tensor | None:
    """The probe inputs [H*W, 2]: the pixel-centre grid the INRs were fitted on, or None
    (no probe features) when ``image_size`` is None. Raises ``ValueError`` when the INR
    architecture cannot be evaluated neuron by neuron."""
    if image_size is None:
        return None
    from gmn.features.neuron_activations import UnsupportedArchitectureError, sequential_spec
    from gmn.models.siren import image_grid

    try:
        spec = sequential_spec(template)
    except UnsupportedArchitectureError as error:
        raise ValueError(
            f"probe features need an INR made of nn.Linear layers with elementwise "
            f"activations ({error}); leave out the gmn_probe family (gmn reads the "
            "parameter graph alone)"
        ) from error
    if spec.in_features != 2:
        raise ValueError(
            f"probe features evaluate the INR on a 2-d pixel grid, but it reads "
            f"{spec.in_features} coordinates; leave out the gmn_probe family"
        )
    height, width = image_size
    return image_grid(height, width)


class ParamsToGraph(nn.Module):
    """[B, P] flat parameters of one architecture → a PyG ``Batch`` of B parameter graphs,
    with the probe features at ``points`` [K, 2] appended to ``x`` unless ``points`` is None.

    The parameters may be standardised: ``raw_scale``/``raw_shift`` [P] map them back
    (``raw = params * raw_scale + raw_shift``) for the probe features, which must evaluate
    the INRs themselves; the graph's own features stay standardised."""

    def __init__(self, template, points: Tensor | None = None,
                 raw_scale: Tensor | None = None, raw_shift: Tensor | None = None):
        super().__init__()
        self.template = template
        self.register_buffer("points", points, persistent=False)
        self.register_buffer("raw_scale", raw_scale, persistent=False)
        self.register_buffer("raw_shift", raw_shift, persistent=False)

    def forward(self, params: Tensor):
        batch = self.template.batch(params)
        if self.points is not None:
            from gmn.features import neuron_activations

            raw = params
            if self.raw_scale is not None:
                raw = params * self.raw_scale + self.raw_shift
            features = neuron_activations(self.template, raw, self.points).to(batch.x.dtype)
            batch = copy.copy(batch)
            batch.x = torch.cat([batch.x, features], dim=1)
        return batch


def build_gmn(
    template,
    num_classes: int,
    train_params: Tensor,
    model_options: dict,
    image_size: tuple[int, int] | None = None,
    raw_affine: tuple[Tensor | None, Tensor | None] = (None, None),
) -> nn.Module:
    """``Sequential(graph=ParamsToGraph, gmn=GMN)`` with input features (probe features
    included) standardised by the statistics of (up to 512 of) the training parameter
    vectors ``train_params`` [N, P].

    ``model_options`` are :func:`split_gmn_config`'s; with ``probe_features`` true,
    ``image_size`` (H, W) of the images the INRs were fitted to is required, and
    ``raw_affine`` = (scale, shift) [P] undoes a standardisation of the parameters
    (``BenchmarkData.param_scale``/``param_shift``) so that the probes see the INRs'
    own functions."""
    from gmn.graph.parameter_graph import NODE_FEATURES
    from gmn.nn import GMN

    options = dict(model_options)
    probes = options.pop("probe_features", False)
    if probes and image_size is None:
        raise ValueError("probe features need the image size (H, W) the INRs were fitted on")
    points = probe_points(template, tuple(image_size) if probes else None)
    k = 0 if points is None else len(points)
    options["node_in_dim"] = len(NODE_FEATURES) + k
    graph = ParamsToGraph(template, points, *raw_affine)
    gmn = GMN(out_dim=num_classes, **options)
    with torch.no_grad():
        graphs = graph(train_params[:512])
        gmn.fit_feature_statistics(graphs)
    return nn.Sequential(OrderedDict(graph=graph, gmn=gmn))


def gmn_augmentation(template, image_size: tuple[int, int], shift_pixels: int | str,
                     permute: bool,
                     raw_affine: tuple[Tensor | None, Tensor | None] = (None, None)):
    """Trainer transform on ``(params [B, P], labels)``: each INR moved by up to
    ``shift_pixels`` whole pixels (``"auto"``: ``min(image_size) // 28``), then (``permute``)
    its hidden neurons permuted at random.

    The shift acts on the INRs' own parameters: with ``raw_affine`` = (scale, shift) [P]
    undoing a standardisation, the first-layer bias moves by ``W δ / scale`` and no other
    entry changes. Returns None when there is nothing to do."""
    from gmn.data.augment import RandomPixelShift
    from gmn.graph.permutation import permute as permute_hidden

    if shift_pixels == "auto":
        shift_pixels = min(image_size) // 28
    if isinstance(shift_pixels, bool) or not isinstance(shift_pixels, int) or shift_pixels < 0:
        raise ValueError(
            f'--gmn-config shift_pixels must be "auto" or an integer >= 0, got {shift_pixels!r}'
        )
    if not shift_pixels and not permute:
        return None
    shift = RandomPixelShift(*image_size, shift_pixels) if shift_pixels else None
    scale, offset = raw_affine
    if (scale is None) != (offset is None):
        raise ValueError("raw_affine takes both a scale and a shift [P], or neither")

    def transform(batch, generator: torch.Generator):
        params, labels = batch
        if shift is not None:
            factor = 1.0 if scale is None else scale.to(params)
            raw = params if scale is None else params * factor + offset.to(params)
            moved = template.matrix(shift(template.to_stacked(raw), generator))
            params = params + (moved - raw) / factor
        if permute:
            params = permute_hidden(template, params, generator)
        return params, labels

    return transform
