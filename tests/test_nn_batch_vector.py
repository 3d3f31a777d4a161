"""A batch of graphs that lost its ``batch`` vector is refused, not read as one graph."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch

import gmn
from gmn.nn import GMN, GraphFieldError
from gmn.testing import make_siren


def test_a_batch_without_its_batch_vector_is_refused():
    batch = Batch.from_data_list([gmn.from_state_dict(make_siren(seed=s)) for s in range(4)])
    torch.manual_seed(0)
    model = GMN(hidden_dim=8, num_layers=1).eval()
    assert model(batch).shape[0] == 4
    batch.batch = None
    with pytest.raises(GraphFieldError, match="batch of 4 graphs without its 'batch' vector"):
        model(batch)


def test_a_single_graph_needs_no_batch_vector():
    graph = gmn.from_state_dict(make_siren(seed=0))
    torch.manual_seed(0)
    model = GMN(hidden_dim=8, num_layers=1).eval()
    alone = model(graph)
    together = model(Batch.from_data_list([graph]))
    assert alone.shape[0] == 1 and torch.allclose(alone, together, atol=1e-6)
