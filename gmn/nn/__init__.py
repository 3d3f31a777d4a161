"""Graph metanetwork building blocks and the ready :class:`GMN` model.

Owns the metanetwork blocks; reads graphs through the ``gmn.graph`` contract.
May import: gmn.graph, gmn.scatter, gmn.models (the SIREN pixel grid of function samples).

Compose your own metanetwork from the encoders, :class:`EdgeUpdate`, :class:`NodeUpdate`,
:class:`GlobalUpdate`, :class:`GMNLayer` and :class:`Readout`, or use :class:`GMN` (its
defaults need no fitting call; ``GMN(out_dim=C, **INR_WEIGHTS_ONLY)`` is the INR benchmark's
weights-only model). Tasks that output weights use :class:`ParameterHead` (:class:`GMNEditor`,
:func:`build_editor`); NFN's NP layers (:class:`NPLinear`, :class:`NFNClassifier`,
:class:`NFNEditor`) are the equivariant baseline from the literature.
"""

from gmn.nn.canonical import CanonicalStandardize
from gmn.nn.context import GraphContext, GraphFieldError, graph_context
from gmn.nn.edge_update import EdgeUpdate
from gmn.nn.edit import GMNEditor, build_editor
from gmn.nn.encoders import EdgeEncoder, NodeEncoder
from gmn.nn.fourier import ScalarFourierFeatures
from gmn.nn.global_update import GlobalUpdate
from gmn.nn.heads import ParameterHead
from gmn.nn.layer import GMNLayer
from gmn.nn.model import GMN, GMNConfig
from gmn.nn.nfn import NFN, NFNClassifier, NFNEditor, NPLinear, WeightSpaceFeatures
from gmn.nn.node_update import NodeUpdate
from gmn.nn.presets import INR_WEIGHTS_ONLY, ZOO_GMN, zoo_gmn_config
from gmn.nn.readout import POOLINGS, AttentionPooling, Readout
from gmn.nn.standardize import Standardize
from gmn.nn.state import GraphState

__all__ = [
    "CanonicalStandardize",
    "GMN",
    "GMNConfig",
    "INR_WEIGHTS_ONLY",
    "ZOO_GMN",
    "zoo_gmn_config",
    "GMNLayer",
    "GraphState",
    "GraphContext",
    "GraphFieldError",
    "graph_context",
    "EdgeUpdate",
    "NodeUpdate",
    "GlobalUpdate",
    "NodeEncoder",
    "EdgeEncoder",
    "ScalarFourierFeatures",
    "Standardize",
    "Readout",
    "AttentionPooling",
    "POOLINGS",
    "ParameterHead",
    "GMNEditor",
    "build_editor",
    "NFN",
    "NFNClassifier",
    "NFNEditor",
    "NPLinear",
    "WeightSpaceFeatures",
]
