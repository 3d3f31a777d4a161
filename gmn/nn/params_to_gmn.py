"""A GMN that reads flat parameter vectors: ``[B, P] → Batch (+ function samples) → GMN``.

:class:`ParamsToGraph` turns a batch of parameter vectors of one architecture into a batch of
parameter graphs (one gather, no per-sample Python work); with query points it appends each
neuron's values there (*function samples*, :func:`gmn.graph.function_samples.
with_function_samples`) to the node features. :func:`build_gmn` puts it in front of a
:class:`gmn.nn.GMN` whose input features are standardised with statistics of training
parameters. A model that reads ``[B, P]`` tensors shares datasets, augmentations and the
trainer with any flat-vector model (the INR benchmark's weight-space MLP, for one).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from gmn.graph.function_samples import (
    UnsupportedArchitectureError,
    sequential_spec,
    with_function_samples,
)
from gmn.graph.signs import canonicalize_signs
from gmn.graph.weights import Weights
from gmn.models.siren import image_grid


def query_points(template, image_size: tuple[int, int] | None, count: int | None = None,
                 seed: int = 0) -> Tensor | None:
    """The query points: [H*W, 2], the pixel-centre grid the INRs were fitted on, or, with
    ``count``, [count, 2] points drawn uniformly in [-1, 1]² (seeded by ``seed``); None (no
    function samples) when ``image_size`` is None. Raises ``ValueError`` when the INR
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
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"query_points must be a positive number of points, got {count!r}")
        return torch.rand(count, 2, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    height, width = image_size
    return image_grid(height, width)


class ParamsToGraph(nn.Module):
    """[B, P] flat parameters of one architecture → a PyG ``Batch`` of B parameter graphs,
    with the function samples at ``points`` [K, in] appended to ``x`` unless ``points`` is
    None.

    With ``canonical_signs`` every network is first put in its canonical sign (and, for
    sines, phase) per hidden neuron (:func:`gmn.graph.canonicalize_signs`), so that what
    follows is invariant to function-preserving sign flips.

    The parameters may be standardised: ``raw_scale``/``raw_shift`` [P] map them back
    (``raw = params * raw_scale + raw_shift``) for the function samples and the canonical
    signs, which must act on the networks themselves; the graph's own features stay
    standardised."""

    def __init__(self, template, points: Tensor | None = None,
                 raw_scale: Tensor | None = None, raw_shift: Tensor | None = None,
                 canonical_signs: bool = False):
        super().__init__()
        if (raw_scale is None) != (raw_shift is None):
            raise ValueError("ParamsToGraph takes both raw_scale and raw_shift [P], or neither")
        self.template = template
        self.canonical_signs = canonical_signs
        self.register_buffer("points", points, persistent=False)
        self.register_buffer("raw_scale", raw_scale, persistent=False)
        self.register_buffer("raw_shift", raw_shift, persistent=False)

    def forward(self, params: Tensor):
        weights = Weights(self.template, params)
        raw = weights
        if self.raw_scale is not None:
            raw = weights.with_params(params * self.raw_scale + self.raw_shift)
        if self.canonical_signs:
            raw = canonicalize_signs(raw)
            weights = raw if self.raw_scale is None else raw.with_params(
                (raw.params - self.raw_shift) / self.raw_scale)
        batch = weights.graphs(allow_nonfinite=True)  # checked when ``weights`` was made
        if self.points is not None:
            batch = with_function_samples(batch, raw, self.points)
        return batch


BUILD_OPTIONS = ("function_samples", "query_points", "canonical_signs")  # not GMNConfig's


def params_graph_and_gmn(template, config, train_params: Tensor,
                         image_size: tuple[int, int] | None = None,
                         raw_affine: tuple[Tensor | None, Tensor | None] = (None, None),
                         query_count: int | None = None, canonical_signs: bool = False,
                         ) -> tuple[ParamsToGraph, nn.Module]:
    """A :class:`ParamsToGraph` and a :class:`gmn.nn.GMN` of ``config`` (a ``GMNConfig``,
    its ``node_in_dim`` set here) whose input statistics are fitted on (up to 512 of) the
    training parameter vectors ``train_params`` [N, P].

    With ``image_size`` (H, W) of the images the INRs were fitted to, the graphs carry
    function samples at its pixel centres, or at ``query_count`` seeded random points
    (:func:`query_points`); ``raw_affine`` = (scale, shift) [P] undoes a standardisation of
    the parameters so that the function samples are the INRs' own functions;
    ``canonical_signs`` is :class:`ParamsToGraph`'s."""
    from dataclasses import replace

    from gmn.graph.parameter_graph import NODE_FEATURES
    from gmn.nn import GMN

    if query_count is not None and image_size is None:
        raise ValueError("query_points places function samples; this GMN reads none")
    points = query_points(template, None if image_size is None else tuple(image_size),
                          query_count)
    k = 0 if points is None else len(points)
    graph = ParamsToGraph(template, points, *raw_affine, canonical_signs=canonical_signs)
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

    ``model_options`` are :class:`gmn.nn.GMNConfig` keywords plus ``canonical_signs`` (bool,
    default false: :class:`ParamsToGraph`'s), ``query_points`` (None: the pixel grid, or a
    number of random points, :func:`query_points`) and ``function_samples``
    (bool, default false); with it, ``image_size`` (H, W) of the images the INRs were fitted
    to is required (the query points are its pixel centres, :func:`query_points`), and
    ``raw_affine`` = (scale, shift) [P] undoes a standardisation of the parameters so that
    the function samples are the INRs' own functions."""
    from gmn.nn import GMNConfig

    options = dict(model_options)
    samples = options.pop("function_samples", False)
    canonical_signs = options.pop("canonical_signs", False)
    count = options.pop("query_points", None)
    if samples and image_size is None:
        raise ValueError("function samples need the image size (H, W) the INRs were fitted on")
    config = GMNConfig.from_kwargs(**{**options, "out_dim": num_classes})
    graph, gmn = params_graph_and_gmn(template, config, train_params,
                                      image_size if samples else None, raw_affine, count,
                                      canonical_signs)
    return nn.Sequential(OrderedDict(graph=graph, gmn=gmn))
