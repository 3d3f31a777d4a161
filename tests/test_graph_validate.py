"""`ParameterGraph.validate`: the field contract is checked next to its definition."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch

import gmn
from gmn.graph.parameter_graph import (
    EDGE_INDEX_FIELDS,
    NODE_INDEX_FIELDS,
    REQUIRED_FIELDS,
    GraphFieldError,
    validate_graph,
)
from gmn.testing import make_cnn, make_siren


def test_converted_graphs_and_mixed_batches_are_valid():
    siren, cnn = gmn.from_state_dict(make_siren()), gmn.from_state_dict(make_cnn())
    batch_vector, num_graphs = siren.validate(node_in_dim=5, edge_in_dim=3)
    assert num_graphs == 1 and torch.equal(batch_vector, torch.zeros(siren.num_nodes,
                                                                     dtype=torch.long))
    mixed = Batch.from_data_list([siren, cnn, siren])
    batch_vector, num_graphs = mixed.validate()
    assert num_graphs == 3 and torch.equal(batch_vector, mixed.batch)


@pytest.mark.parametrize("name", REQUIRED_FIELDS)
def test_every_contract_field_is_required_and_named(name):
    graph = gmn.from_state_dict(make_siren())
    del graph[name]
    with pytest.raises(GraphFieldError, match=f"missing field {name!r}"):
        graph.validate()
    if name in NODE_INDEX_FIELDS + EDGE_INDEX_FIELDS:
        validate_graph(graph, optional=(name,))  # a caller that does not read it may skip it


def test_widths_are_checked_only_when_given():
    graph = gmn.from_state_dict(make_siren())
    graph.x = torch.cat([graph.x, graph.x], dim=1)
    graph.validate()
    with pytest.raises(GraphFieldError, match="'x' has 10 feature columns.*node_in_dim=5"):
        graph.validate(node_in_dim=5)
