"""`GMNEditor`: a GMN that outputs weights, ``[B, P] parameters -> [B, P] parameters``.

Weight-space tasks that output weights (editing an INR, e.g. dilating the digit it draws)
need an output for every weight and bias that permutes with the network's hidden neurons.
The editor runs :meth:`gmn.nn.GMN.encode` (equivariant node and edge states), a
:class:`gmn.nn.ParameterHead` (one output per node feature and per edge feature), and reads
the outputs back as parameters with ``GraphTemplate.params_from_features``: every step is
differentiable, so a loss on what the edited networks compute trains it. The way back to
every other form goes through :class:`gmn.Weights`::

    edited = editor(params)                              # [B, P]
    weights = gmn.Weights(template, edited)              # state_dicts(), graphs()
    images = gmn.data.render(weights, 28, 28)            # an INR's function, differentiable
    outputs = gmn.graph.execute(weights.graphs(), x)     # any network's function

Mode ``"delta"`` adds the outputs to the input parameters (the head starts at zero: an
untrained editor is the identity); mode ``"value"`` outputs new parameters. Outputs are in
units of the GMN's input statistics (``GMN.fit_feature_statistics``): a head output of 1 is
one standard deviation of that feature (a bias, a weight) over the training graphs, and
with canonical features one standard deviation of the parameter at that canonical position
(``gmn.nn.canonical``; its spread across networks from a shared initialisation is a few
percent of the layer's, and a SIREN's function moves far with its weights).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gmn.graph.parameter_graph import NODE_FEATURES
from gmn.nn.canonical import canonical_keys
from gmn.nn.heads import ParameterHead
from gmn.nn.model import GMN, MLP_ACTIVATIONS, GMNConfig
from gmn.nn.params_to_gmn import ParamsToGraph, params_graph_and_gmn

MODES = ("delta", "value")


class GMNEditor(nn.Module):
    """[B, P] parameters of ``graph.template``'s architecture -> [B, P] edited parameters.

    Args:
        graph: turns the parameters into a batch of parameter graphs (with function samples
            when it has query points).
        gmn: the GMN whose :meth:`~gmn.nn.GMN.encode` gives node and edge states (its readout
            and head are not used); its input statistics must be fitted.
        mode: ``"delta"`` (input + outputs) or ``"value"`` (outputs).
        head_hidden: width of the head's hidden layer (default: the GMN's ``hidden_dim``).

    Equivariant to hidden-neuron permutations whenever ``gmn.encode`` is (always for the
    message passing; with rank embeddings or canonical features, as long as no two neurons
    of a layer tie). Build one with :func:`build_editor`.
    """

    def __init__(self, graph: ParamsToGraph, gmn: GMN, mode: str = "delta",
                 head_hidden: int | None = None):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        c = gmn.config
        self.mode = mode
        self.graph = graph
        self.gmn = gmn
        self.head = ParameterHead(dim=c.hidden_dim, edge_dim=c.edge_dim,
                                  node_out=len(NODE_FEATURES), edge_out=c.edge_in_dim,
                                  hidden=head_hidden, activation=MLP_ACTIVATIONS[c.activation],
                                  zero_init=mode == "delta")

    def forward(self, params: Tensor) -> Tensor:
        """[B, P] -> [B, P]."""
        batch = self.graph(params)
        state, ctx = self.gmn.encode(batch)
        out = self.head(state, ctx)
        (node_mean, node_std), (edge_mean, edge_std) = self.output_statistics(batch, ctx)
        node, edge = out.node * node_std, out.edge * edge_std
        act_arg = getattr(batch, "node_act_arg", None)
        if self.mode == "value":
            node, edge = node + node_mean, edge + edge_mean
        elif act_arg is not None:
            act_arg = torch.zeros_like(act_arg)  # learned activation arguments: unchanged
        values = self.graph.template.params_from_features(node, edge, act_arg)
        return params + values if self.mode == "delta" else values

    def output_statistics(self, batch, ctx) -> tuple[tuple[Tensor, Tensor], ...]:
        """((mean, std) of the node features [N, 5], (mean, std) of the edge features
        [E, F]) the outputs are scaled by: the GMN's column statistics, or those of each
        canonical position (columns of positions never seen in training)."""
        width = len(NODE_FEATURES)
        nodes, edges = self.gmn.node_encoder.standardize, self.gmn.edge_encoder.standardize
        node = (nodes.mean[:width], nodes.std[:width])
        edge = (edges.mean, edges.std)
        canonical = self.gmn.canonical
        if canonical is None or not canonical.fitted:
            n, e = len(batch.x), len(batch.edge_attr)
            return (tuple(t.expand(n, -1) for t in node), tuple(t.expand(e, -1) for t in edge))
        node_key, edge_key = canonical_keys(batch, canonical.slots(batch, ctx.batch))
        node_mean, node_std = canonical.node.statistics(node_key, nodes.mean, nodes.std)
        return ((node_mean[:, :width], node_std[:, :width]),
                canonical.edge.statistics(edge_key, *edge))


def build_editor(
    template,
    config: GMNConfig,
    train_params: Tensor,
    *,
    mode: str = "delta",
    image_size: Sequence[int] | None = None,
    raw_affine: tuple[Tensor | None, Tensor | None] = (None, None),
    head_hidden: int | None = None,
) -> GMNEditor:
    """A :class:`GMNEditor` for networks of ``template`` whose GMN is built from ``config``
    (every option is taken from it; ``node_in_dim`` is set from the function samples) and
    fitted on (up to 512 of) the training parameter vectors ``train_params`` [N, P].

    ``image_size`` (H, W): give the GMN function samples, each neuron's values at the pixel
    centres of the images the INRs were fitted to; ``raw_affine`` = (scale, shift) [P] undoes
    a standardisation of the parameters so that those are the INRs' own functions."""
    graph, gmn = params_graph_and_gmn(template, config, train_params, image_size, raw_affine)
    return GMNEditor(graph, gmn, mode, head_hidden)
