"""Batches of parameter graphs of different architectures.

PyG's ``Batch.from_data_list`` already batches graphs of any mix of architectures (every
``ParameterGraph`` carries the same fields). The functions here do it per architecture:

* :func:`batch_groups`: M models over T architectures (one :class:`Weights` per
  architecture) → one ``Batch`` with T gathers, not M conversions;
* :func:`concat_batches`: join batches as ``Batch.from_data_list`` would join their graphs;
* :func:`to_state_dicts`: any batch → its M state_dicts, one gather per architecture.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch_geometric.data import Batch

from .errors import ConversionError
from .parameter_graph import ParameterGraph
from .weights import Weights


def batch_groups(groups: Sequence[Weights | tuple[Weights, Tensor]]) -> Batch:
    """``[weights or (weights, y), …]`` (one :class:`Weights` per architecture, labels
    ``y`` [n] optional) → one ``Batch``. The graphs come group after group, in the order given.
    """
    if not groups:
        raise ConversionError("no groups to batch")
    batches = []
    for group in groups:
        weights, y = (group, None) if isinstance(group, Weights) else group
        batches.append(weights.graphs(y=y))
    return concat_batches(batches)


def _shifted(pieces: list[Tensor], shifts: list[int]) -> Tensor:
    return torch.cat([p + s for p, s in zip(pieces, shifts)])


def _joined_slices(slices: list[Tensor]) -> Tensor:
    """Per-batch slice vectors [n_b + 1] → the slice vector of the joined batch."""
    out, end = [slices[0]], slices[0][-1]
    for s in slices[1:]:
        out.append(s[1:] + end)
        end = end + s[-1]
    return torch.cat(out)


def _fields(batch: Batch) -> set[str]:
    return set(batch.keys()) - {"batch", "ptr"}


def concat_batches(batches: Sequence[Batch]) -> Batch:
    """Join ``Batch`` es of ``ParameterGraph`` s: equal, field by field, to
    ``Batch.from_data_list`` of all their graphs in order (``to_data_list`` works on it)."""
    if not batches:
        raise ConversionError("no batches to join")
    if len(batches) == 1:
        return batches[0]
    keys = _fields(batches[0])
    for b in batches[1:]:
        if _fields(b) != keys:
            raise ConversionError(f"batches hold different fields: {sorted(keys)} and "
                                  f"{sorted(_fields(b))} (e.g. labels y in only some)")
    node_shift, graph_shift = [0], [0]
    for b in batches[:-1]:
        node_shift.append(node_shift[-1] + b.num_nodes)
        graph_shift.append(graph_shift[-1] + b.num_graphs)
    fields = {}
    for key in sorted(keys):
        values = [b[key] for b in batches]
        if key == "template":
            fields[key] = [t for v in values for t in v]
        elif key == "edge_index":
            fields[key] = torch.cat([v + s for v, s in zip(values, node_shift)], dim=1)
        else:
            fields[key] = torch.cat(values, dim=batches[0].__cat_dim__(key, values[0]))
    out = Batch(_base_cls=ParameterGraph, **fields)
    out._slice_dict = {k: _joined_slices([b._slice_dict[k] for b in batches]) for k in keys}
    out._inc_dict = {}
    for key in keys:
        incs = [b._inc_dict[key] for b in batches]
        if any(i is None for i in incs):
            out._inc_dict[key] = None
        elif key == "edge_index":
            out._inc_dict[key] = _shifted(incs, node_shift)
        else:
            out._inc_dict[key] = torch.cat(incs)
    out.batch = _shifted([b.batch for b in batches], graph_shift)
    out.ptr = _joined_slices([b.ptr for b in batches])
    out._num_graphs = graph_shift[-1] + batches[-1].num_graphs
    return out


def _ranges(starts: Tensor, ends: Tensor) -> Tensor:
    """The concatenation of ``arange(starts[i], ends[i])`` over i."""
    lengths = ends - starts
    offsets = torch.cumsum(lengths, 0) - lengths
    return torch.arange(int(lengths.sum()), device=starts.device) + torch.repeat_interleave(
        starts - offsets, lengths)


def to_state_dicts(batch: Batch) -> list[dict[str, Tensor]]:
    """Every model of ``batch`` (any mix of architectures, any order), as a state_dict,
    bit for bit; one gather per architecture."""
    templates = batch.template
    if not isinstance(templates, list):
        raise ConversionError("not a batch of parameter graphs (no list of templates); use "
                              "gmn.to_state_dict for one graph")
    groups: dict[int, list[int]] = {}
    for i, template in enumerate(templates):
        groups.setdefault(id(template), []).append(i)
    node_ptr, edge_ptr = batch._slice_dict["x"], batch._slice_dict["edge_attr"]
    int_ptr = batch._slice_dict["int_buffers"]
    out: list = [None] * len(templates)
    for members in groups.values():
        template = templates[members[0]]
        index = torch.tensor(members)
        nodes = _ranges(node_ptr[index], node_ptr[index + 1])
        rows = ParameterGraph(x=batch.x[nodes], node_act_arg=batch.node_act_arg[nodes],
                              edge_attr=batch.edge_attr[_ranges(edge_ptr[index],
                                                                edge_ptr[index + 1])])
        int_buffers = batch.int_buffers[0, _ranges(int_ptr[index], int_ptr[index + 1])]
        weights = Weights(template, template.params_of(rows),
                          int_buffers.reshape(len(members), template.int_width),
                          allow_nonfinite=True)
        for i, state in zip(members, weights.state_dicts()):
            out[i] = state
    return out
