"""A GMN that reads flat parameter vectors: ``[B, P] → Batch (+ function samples) → GMN``.

:class:`ParamsToGraph` turns a batch of parameter vectors of one architecture into a batch of
parameter graphs (one gather, no per-sample Python work); with query points it appends each
neuron's values there (*function samples*, :func:`gmn.graph.neuron_activations.
with_neuron_activations`) to the node features. :func:`build_gmn` puts it in front of a
:class:`gmn.nn.GMN` whose input features are standardised with statistics of training
parameters. A model that reads ``[B, P]`` tensors shares datasets, augmentations and the
trainer with any flat-vector model (the INR benchmark's weight-space MLP, for one).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from gmn.graph.neuron_activations import (
    UnsupportedArchitectureError,
    sequential_spec,
    with_neuron_activations,
)
from gmn.graph.weights import Weights
from gmn.models.siren import image_grid


def query_points(template, image_size: tuple[int, int] | None) -> Tensor | None:
    """The query points [H*W, 2]: the pixel-centre grid the INRs were fitted on, or None
    (no function samples) when ``image_size`` is None. Raises ``ValueError`` when the INR
    architecture cannot be evaluated neuron by neuron."""
    if image_size is None:
        return None
    try:
        spec = sequential_spec(template)
    except UnsupportedArchitectureError as error:
        raise ValueError(
            f"function samples need an INR made of nn.Linear layers with elementwise "
            f"activations ({error}); leave them out (in the INR benchmark: the gmn_probe "
            "family; gmn reads the parameter graph alone)"
        ) from error
    if spec.in_features != 2:
        raise ValueError(
            f"function samples evaluate the INR on a 2-d pixel grid, but it reads "
            f"{spec.in_features} coordinates; leave them out (in the INR benchmark: the "
            "gmn_probe family)"
        )
    height, width = image_size
    return image_grid(height, width)


class ParamsToGraph(nn.Module):
    """[B, P] flat parameters of one architecture → a PyG ``Batch`` of B parameter graphs,
    with the function samples at ``points`` [K, in] appended to ``x`` unless ``points`` is
    None.

    The parameters may be standardised: ``raw_scale``/``raw_shift`` [P] map them back
    (``raw = params * raw_scale + raw_shift``) for the function samples, which must evaluate
    the networks themselves; the graph's own features stay standardised."""

    def __init__(self, template, points: Tensor | None = None,
                 raw_scale: Tensor | None = None, raw_shift: Tensor | None = None):
        super().__init__()
        if (raw_scale is None) != (raw_shift is None):
            raise ValueError("ParamsToGraph takes both raw_scale and raw_shift [P], or neither")
        self.template = template
        self.register_buffer("points", points, persistent=False)
        self.register_buffer("raw_scale", raw_scale, persistent=False)
        self.register_buffer("raw_shift", raw_shift, persistent=False)

    def forward(self, params: Tensor):
        weights = Weights(self.template, params)
        batch = weights.graphs(allow_nonfinite=True)  # checked when ``weights`` was made
        if self.points is not None:
            raw = weights
            if self.raw_scale is not None:
                raw = weights.with_params(params * self.raw_scale + self.raw_shift)
            batch = with_neuron_activations(batch, raw, self.points)
        return batch


def params_graph_and_gmn(template, config, train_params: Tensor,
                         image_size: tuple[int, int] | None = None,
                         raw_affine: tuple[Tensor | None, Tensor | None] = (None, None)
                         ) -> tuple[ParamsToGraph, nn.Module]:
    """A :class:`ParamsToGraph` and a :class:`gmn.nn.GMN` of ``config`` (a ``GMNConfig``,
    its ``node_in_dim`` set here) whose input statistics are fitted on (up to 512 of) the
    training parameter vectors ``train_params`` [N, P].

    With ``image_size`` (H, W) of the images the INRs were fitted to, the graphs carry
    function samples at its pixel centres (:func:`query_points`); ``raw_affine`` = (scale,
    shift) [P] undoes a standardisation of the parameters so that the function samples are
    the INRs' own functions."""
    from dataclasses import replace

    from gmn.graph.parameter_graph import NODE_FEATURES
    from gmn.nn import GMN

    points = query_points(template, None if image_size is None else tuple(image_size))
    k = 0 if points is None else len(points)
    graph = ParamsToGraph(template, points, *raw_affine)
    gmn = GMN(config=replace(config, node_in_dim=len(NODE_FEATURES) + k))
    with torch.no_grad():
        gmn.fit_feature_statistics(graph(train_params[:512]))
    return graph, gmn


def build_gmn(
    template,
    num_classes: int,
    train_params: Tensor,
    model_options: dict,
    image_size: tuple[int, int] | None = None,
    raw_affine: tuple[Tensor | None, Tensor | None] = (None, None),
) -> nn.Module:
    """``Sequential(graph=ParamsToGraph, gmn=GMN)`` with input features (function samples
    included) standardised by the statistics of (up to 512 of) the training parameter
    vectors ``train_params`` [N, P].

    ``model_options`` are :class:`gmn.nn.GMNConfig` keywords plus ``function_samples``
    (bool, default false); with it, ``image_size`` (H, W) of the images the INRs were fitted
    to is required (the query points are its pixel centres, :func:`query_points`), and
    ``raw_affine`` = (scale, shift) [P] undoes a standardisation of the parameters so that
    the function samples are the INRs' own functions."""
    from gmn.nn import GMNConfig

    options = dict(model_options)
    samples = options.pop("function_samples", False)
    if samples and image_size is None:
        raise ValueError("function samples need the image size (H, W) the INRs were fitted on")
    config = GMNConfig.from_kwargs(**{**options, "out_dim": num_classes})
    graph, gmn = params_graph_and_gmn(template, config, train_params,
                                      image_size if samples else None, raw_affine)
    return nn.Sequential(OrderedDict(graph=graph, gmn=gmn))
