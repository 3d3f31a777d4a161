"""`GraphTemplate`: one architecture's graph structure, filled with any number of parameter sets.

A template is built once per architecture by tracing a module. It stores, for every node
feature and edge feature, the index of the scalar that fills it in the extended parameter
vector ``[parameters…, constants…]``. Converting a model is then one gather; converting N
models of the architecture is one gather on an [N, P] matrix plus index arithmetic.

**The parameter vector.** ``P`` counts the *floating* entries of the module's
``state_dict()`` (parameters and floating buffers such as BatchNorm running statistics),
flattened and concatenated in state_dict order. Integer buffers (``num_batches_tracked``)
are not parameters: a graph keeps them in ``int_buffers`` ([1, K], a batch [1, N·K]) so that
``to_state_dict`` restores them, and a batch built from an [N, P] matrix sets them to 0.
N parameter sets travel as a :class:`gmn.graph.weights.Weights` (template, [N, P] matrix,
integer buffers), whose ``graphs()`` calls :meth:`GraphTemplate.batch`.
"""

from __future__ import annotations

import bisect
import copy
import functools
from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from gmn import large_tensors

from .builder import GraphBuilder
from .errors import ConversionError
from .parameter_graph import (
    EDGE_INDEX_FIELDS,
    NODE_FEATURES,
    NODE_INDEX_FIELDS,
    ParameterGraph,
)
from .trace import trace_into

BATCH_CACHE_SIZE = 4  # batch sizes whose structure tensors are kept


def _refuse_tied(model: nn.Module) -> None:
    """Two state_dict entries holding one parameter (tied weights) would become two
    independent sets of edges; refused."""
    seen: dict[int, str] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        if id(parameter) in seen:
            raise ConversionError(
                f"parameters {seen[id(parameter)]!r} and {name!r} are one tensor (tied weights: "
                "a parameter used twice); weight sharing is not supported")
        seen[id(parameter)] = name


class GraphTemplate:
    """The parameter graph of one architecture, without values.

    Build with :meth:`from_module`. Attributes: ``keys`` (floating state_dict keys),
    ``shapes``, ``dtypes``, ``num_params`` (P), ``num_nodes`` (N), ``num_edges`` (E),
    ``edge_dim`` (F), ``encoding`` and ``metadata`` (e.g. ``output_offset``, a constant the
    network adds to its output).
    """

    def __init__(self, builder: GraphBuilder, structure: dict, keys: list[str],
                 dtypes: list[torch.dtype], int_entries: dict[str, tuple[torch.Size, torch.dtype]],
                 key_order: list[str], encoding: str, fixed_groups: set[int]):
        self.keys = keys
        self.shapes = [builder.shapes[k] for k in keys]
        self.dtypes = dtypes
        self.int_entries = int_entries
        self.int_width = sum(shape.numel() for shape, _ in int_entries.values())  # K
        self.key_order = key_order
        self.encoding = encoding
        self.metadata = dict(builder.metadata, encoding=encoding)
        self.num_params = builder.num_params
        self.offsets = [builder.offsets[k] for k in keys]
        self.structure = structure
        self.num_nodes = structure["x_src"].shape[0]
        self.num_edges, self.edge_dim = structure["edge_src"].shape
        # activation arguments: constants ([N] float64, 0 where learned), or learned ones
        # (PReLU's slopes) gathered per model like a feature
        act_src = structure["act_src"]
        learned = act_src < self.num_params
        self.learned_act = bool(learned.any())
        self.act_arg = torch.where(
            learned, 0.0, structure["constants"][(act_src - self.num_params).clamp(min=0)])
        # where each parameter sits in [node features..., edge features..., activation
        # arguments...] (for the inverse; a slope shared by several neurons: its first place)
        gather_index = torch.cat([structure["x_src"].reshape(-1),
                                  structure["edge_src"].reshape(-1), structure["act_src"]])
        is_param = gather_index < self.num_params
        self.inverse_index = torch.full((self.num_params,), len(gather_index)).scatter_reduce(
            0, gather_index[is_param], torch.nonzero(is_param).flatten(), "amin")
        self.dtype = dtypes[0]
        for dtype in dtypes[1:]:
            self.dtype = torch.promote_types(self.dtype, dtype)
        # what gmn.graph.permutation needs
        self.groups = [(g.start, g.size) for g in builder.groups]
        self.param_axes = builder.param_axes
        self.ties = builder.ties
        self.permutation_blocks = builder.permutation_blocks
        self.fixed_groups = fixed_groups
        self.program = builder.program  # what gmn.graph.execute reads besides the graph
        self._numels = [s.numel() for s in self.shapes]
        self.__dict__.update(self.fresh_caches())

    @staticmethod
    def fresh_caches() -> dict:
        """The template's caches, empty: what it computes from its structure on first use
        (never part of what it is: not pickled, not stored)."""
        return {
            "_placed": {},  # {(device, dtype): structure tensors there}
            "_prototypes": {},  # {(device, dtype): structure-only graph to copy}
            "_batched": OrderedDict(),  # batched structure per batch size
            # large outputs of batch() reused once the batch that held them is gone
            "_recycler": large_tensors.Recycler(),
        }

    def __getstate__(self) -> dict:
        """Pickled (a dataset sent to worker processes) without its caches and buffers."""
        return {**self.__dict__, **self.fresh_caches()}

    def _structure_on(self, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
        """The structure tensors on ``device``, float ones in ``dtype`` (cached)."""
        key = (device, dtype)
        if key not in self._placed:
            placed = {k: v.to(device) for k, v in self.structure.items()}
            placed["constants"] = placed["constants"].to(dtype)
            placed["node_act_arg"] = self.act_arg.to(device, dtype)
            placed["node_spec"] = placed["node_spec"].to(dtype)
            placed["x_index"] = self.structure["x_src"].reshape(-1).to(device)
            placed["edge_attr_index"] = self.structure["edge_src"].reshape(-1).to(device)
            static = {k: placed[k] for k in NODE_INDEX_FIELDS + EDGE_INDEX_FIELDS}
            self._prototypes[key] = ParameterGraph(
                edge_index=placed["edge_index"], node_act_arg=placed["node_act_arg"],
                node_spec=placed["node_spec"], template=self, **static)
            self._placed[key] = placed
        return self._placed[key]

    @classmethod
    def from_module(cls, model: nn.Module, encoding: str = "position",
                    concrete_args: dict | None = None) -> GraphTemplate:
        """Trace ``model`` and lay out its graph.

        Args:
            model: the network; its ``forward`` must be traceable by ``torch.fx``.
            encoding: ``"position"`` (one edge per kernel position, features (w, dy, dx)) or
                ``"padded"`` (one edge per channel pair, the kernel zero-padded to the largest).
            concrete_args: values for ``forward``'s other arguments, fixed while tracing
                (``torch.fx``'s ``concrete_args``, e.g. ``{"return_dict": False}``).
        """
        state = model.state_dict()
        parameter_names = {name for name, _ in model.named_parameters()}
        _refuse_tied(model)
        keys, dtypes, int_entries = [], [], {}
        for key, tensor in state.items():
            if tensor.is_floating_point():
                keys.append(key)
                dtypes.append(tensor.dtype)
            elif key in parameter_names:
                raise ConversionError(
                    f"parameter {key!r} has dtype {tensor.dtype}; parameters must be floating point"
                )
            else:
                int_entries[key] = (tensor.shape, tensor.dtype)
        if not keys:
            raise ConversionError(f"{type(model).__name__} has no floating-point parameters "
                                  "(an empty model cannot be converted)")
        builder = GraphBuilder(keys, [state[k].shape for k in keys])
        inputs, outputs = trace_into(builder, model, concrete_args)
        structure = builder.finish(encoding, outputs, inputs)
        fixed = {inputs.gid, outputs.gid} | {g.gid for g in builder.groups if g.token} | (
            builder.fixed)
        return cls(builder, structure, keys, dtypes, int_entries, list(state), encoding, fixed)

    # --- parameter vectors ----------------------------------------------------------------
    def flatten(self, state_dict: Mapping[str, Tensor], allow_nonfinite: bool = False) -> Tensor:
        """The parameter vector [P] of one state_dict (keys, shapes and dtypes checked)."""
        flat = torch.cat(self._parts(state_dict))
        if not allow_nonfinite:
            self._check_finite(flat.unsqueeze(0))
        return flat

    def _parts(self, state_dict: Mapping[str, Tensor]) -> list[Tensor]:
        """The floating entries of ``state_dict``, checked and flattened, in ``self.keys`` order."""
        if len(state_dict) != len(self.key_order) or any(
                k not in state_dict for k in self.key_order):
            self._check_keys(state_dict.keys())
        parts = []
        for key, shape, dtype in zip(self.keys, self.shapes, self.dtypes):
            tensor = state_dict[key]
            if tensor.dtype != dtype or tensor.shape != shape:
                self._check_entry(key, tensor)
            parts.append(tensor.reshape(-1) if dtype == self.dtype
                         else tensor.reshape(-1).to(self.dtype))
        return parts

    def _check_entry(self, key: str, tensor: Tensor) -> None:
        if not tensor.is_floating_point():
            raise ConversionError(f"state_dict entry {key!r} has dtype {tensor.dtype}; "
                                  "a floating point tensor is expected")
        index = self.keys.index(key)
        if tensor.dtype != self.dtypes[index]:
            raise ConversionError(f"state_dict entry {key!r} has dtype {tensor.dtype}, expected "
                                  f"{self.dtypes[index]} (convert the module or the tensors)")
        shape = self.shapes[index]
        if tensor.shape != shape:
            raise ConversionError(f"state_dict entry {key!r} has shape {tuple(tensor.shape)}, "
                                  f"expected {tuple(shape)}")

    def _check_keys(self, keys, allow_missing_int: bool = False) -> None:
        expected = set(self.key_order)
        given = set(keys)
        missing = [k for k in self.key_order if k not in given
                   and not (allow_missing_int and k in self.int_entries)]
        if missing:
            raise ConversionError(f"state_dict is missing key {missing[0]!r}"
                                  + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        extra = sorted(given - expected)
        if extra:
            raise ConversionError(f"state_dict has unexpected key {extra[0]!r}"
                                  + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))

    def _check_finite(self, flat: Tensor) -> None:
        if bool(torch.isfinite(flat.sum())):  # a NaN or inf anywhere makes the sum non-finite
            return
        finite = torch.isfinite(flat)
        if bool(finite.all()):  # the sum overflowed, the entries are fine
            return
        sample, position = (int(i) for i in torch.nonzero(~finite)[0])
        key = self.keys[bisect.bisect_right(self.offsets, position) - 1]
        raise ConversionError(f"parameter {key!r} of sample {sample} is not finite "
                              f"({flat[sample, position].item()}); pass allow_nonfinite=True to "
                              "convert anyway")

    # --- graphs ---------------------------------------------------------------------------
    def _features(self, extended: Tensor, gather=large_tensors.index_select
                  ) -> tuple[Tensor, Tensor, Tensor | None]:
        """[B, P + constants] → node features [B*N, 5], edge features [B*E, F] and, when the
        template has learned activation arguments, ``node_act_arg`` [B*N] (gathers, with
        ``gather(source, dim, index)``)."""
        n = extended.shape[0]
        placed = self._structure_on(extended.device, extended.dtype)
        x = gather(extended, 1, placed["x_index"])
        edge_attr = gather(extended, 1, placed["edge_attr_index"])
        act_arg = extended.index_select(1, placed["act_src"]).view(-1) if self.learned_act \
            else None
        return (x.view(n * self.num_nodes, len(NODE_FEATURES)),
                edge_attr.view(n * self.num_edges, self.edge_dim), act_arg)

    def graph(self, state_dict: Mapping[str, Tensor], y=None,
              allow_nonfinite: bool = False) -> ParameterGraph:
        """One state_dict → its :class:`ParameterGraph`."""
        parts = self._parts(state_dict)
        key = (parts[0].device, self.dtype)
        placed = self._structure_on(*key)
        extended = torch.cat([*parts, placed["constants"]])
        if not allow_nonfinite:
            self._check_finite(extended[:self.num_params].unsqueeze(0))
        # one graph: small outputs, not worth gmn.large_tensors's checks
        x, edge_attr, act_arg = self._features(extended.unsqueeze(0), Tensor.index_select)
        # a shallow copy shares the structure tensors with the template (cheaper than a new
        # ParameterGraph); clone a field before modifying it in place
        graph = copy.copy(self._prototypes[key])
        graph.x, graph.edge_attr = x, edge_attr
        if act_arg is not None:
            graph.node_act_arg = act_arg
        graph.int_buffers = torch.cat(
            [state_dict[k].reshape(1, -1).long() for k in self.int_entries], dim=1
        ).to(key[0]) if self.int_entries else torch.zeros(1, 0, dtype=torch.long, device=key[0])
        if y is not None:
            graph.y = torch.as_tensor(y, device=key[0]).reshape(1)
        return graph

    def batch(self, params: Tensor, y: Tensor | None = None, int_buffers: Tensor | None = None,
              allow_nonfinite: bool = False) -> Batch:
        """N parameter sets → one PyG ``Batch`` of N graphs, without a per-sample loop.

        Args:
            params: the [N, P] parameter matrix (see the module docstring); other forms of
                weights go through :class:`gmn.graph.weights.Weights` (``.graphs()``).
            y: optional labels [N].
            int_buffers: [N, K] integer buffers (default: zeros).
            allow_nonfinite: accept NaN/inf parameters.

        Returns:
            a ``Batch`` with ``x`` [N·nodes, 5], ``edge_attr`` [N·edges, F], ``edge_index``
            offset per graph, ``batch`` and ``ptr``; equal to ``Batch.from_data_list`` of the
            graphs converted one by one. The structure tensors (``edge_index``, types,
            layers, ``batch``, ``ptr``) are shared between batches of the same size: clone a
            field before modifying it in place.
        """
        if not isinstance(params, Tensor) or params.dim() != 2 or (
                params.shape[1] != self.num_params):
            raise ConversionError(
                f"a parameter matrix must be [N, {self.num_params}], got "
                + (str(list(params.shape)) if isinstance(params, Tensor) else type(params).__name__)
                + " (Weights.from_state_dicts/from_stacked(...).graphs() batch the other forms)")
        if not params.is_floating_point():
            raise ConversionError(f"the parameter matrix has dtype {params.dtype}; a "
                                  "floating point tensor is expected")
        if not allow_nonfinite:
            self._check_finite(params)
        flat = params
        n, device = flat.shape[0], flat.device
        constants = self._structure_on(device, flat.dtype)["constants"]
        extended = large_tensors.cat([flat, constants.expand(n, -1)], dim=1,
                                     recycler=self._recycler)
        x, edge_attr, act_arg = self._features(extended, functools.partial(
            large_tensors.index_select, recycler=self._recycler))
        del extended  # its memory is recycled by the next batch
        static = self._batched_structure(n, device, flat.dtype)
        out = Batch(_base_cls=ParameterGraph, x=x, edge_attr=edge_attr, template=[self] * n,
                    **static["fields"])
        if act_arg is not None:
            out.node_act_arg = act_arg
        counts = dict(static["counts"])
        # [1, N*K]: int_buffers concatenate along dim 1 (ParameterGraph.__cat_dim__)
        if int_buffers is None:
            int_buffers = torch.zeros(n, self.int_width, dtype=torch.long, device=device)
        out.int_buffers = int_buffers.to(device).reshape(1, -1)
        counts["int_buffers"] = self.int_width
        if y is not None:
            out.y = torch.as_tensor(y, device=device).reshape(n)
            counts["y"] = 1
        ends = static["ends"]
        out._slice_dict = {k: ends * c for k, c in counts.items()}
        out._inc_dict = {k: static["zeros"] for k in counts}
        out._inc_dict["edge_index"] = static["node_offsets"]
        out._inc_dict["template"] = None
        out.batch, out.ptr = static["batch"], static["ptr"]
        out._num_graphs = n
        return out

    def _batched_structure(self, n: int, device: torch.device, dtype: torch.dtype) -> dict:
        """The structure fields of a batch of ``n`` graphs (cached for the last few ``n``:
        datasets ask for the same minibatch size again and again)."""
        key = (n, device, dtype)
        if key in self._batched:
            self._batched.move_to_end(key)
            return self._batched[key]
        s = self._structure_on(device, dtype)
        graphs = torch.arange(n, device=device)
        node_offsets = graphs * self.num_nodes
        fields = {k: s[k].repeat(n) for k in NODE_INDEX_FIELDS + EDGE_INDEX_FIELDS}
        fields["node_act_arg"] = s["node_act_arg"].repeat(n)
        fields["node_spec"] = s["node_spec"].repeat(n, 1)
        fields["edge_index"] = (s["edge_index"].unsqueeze(1)
                                + node_offsets.view(1, n, 1)).reshape(2, -1)
        counts = {"x": self.num_nodes, "edge_index": self.num_edges, "template": 1,
                  "edge_attr": self.num_edges, "node_act_arg": self.num_nodes,
                  "node_spec": self.num_nodes}
        counts.update({k: self.num_nodes for k in NODE_INDEX_FIELDS})
        counts.update({k: self.num_edges for k in EDGE_INDEX_FIELDS})
        ends = torch.arange(n + 1, device=device)
        static = dict(fields=fields, counts=counts, ends=ends, node_offsets=node_offsets,
                      zeros=torch.zeros(n, dtype=torch.long, device=device),
                      batch=graphs.repeat_interleave(self.num_nodes), ptr=ends * self.num_nodes)
        self._batched[key] = static
        if len(self._batched) > BATCH_CACHE_SIZE:
            self._batched.popitem(last=False)
        return static

    # --- back to weights ------------------------------------------------------------------
    def params_of(self, graphs) -> Tensor:
        """The [N, P] parameter matrix held by a graph or batch of graphs of this template."""
        return self.params_from_features(graphs.x, graphs.edge_attr,
                                         getattr(graphs, "node_act_arg", None))

    def params_from_features(self, x: Tensor, edge_attr: Tensor,
                             node_act_arg: Tensor | None = None) -> Tensor:
        """The [N, P] parameter matrix that node features ``x`` [N·nodes, ≥ 5] (the columns
        ``NODE_FEATURES`` first; later ones, e.g. function samples, are not read), edge
        features ``edge_attr`` [N·edges, F] and (for learned activation arguments)
        ``node_act_arg`` [N·nodes] of N graphs of this template hold: each parameter is read
        from its place (the inverse of :meth:`batch`; entries that hold constants, such as a
        kernel offset, are not read). Differentiable: per-node and per-edge outputs of a
        metanetwork become parameters this way (``gmn.nn.ParameterHead``)."""
        width = len(NODE_FEATURES)
        n = x.shape[0] // self.num_nodes
        if x.dim() != 2 or x.shape[0] != n * self.num_nodes or x.shape[1] < width or (
                edge_attr.shape != (n * self.num_edges, self.edge_dim)):
            raise ConversionError(
                f"graph has node features {list(x.shape)} and edge features "
                f"{list(edge_attr.shape)}; this template has {self.num_nodes} nodes with "
                f"{width} features and [{self.num_edges}, {self.edge_dim}] edge features per "
                "graph"
            )
        parts = [x[:, :width].reshape(n, -1), edge_attr.reshape(n, -1).to(x.dtype)]
        if self.learned_act:
            if node_act_arg is None:
                raise ConversionError("this template has learned activation arguments "
                                      "(PReLU slopes): pass node_act_arg [N·nodes]")
            parts.append(node_act_arg.reshape(n, -1).to(x.dtype))
        features = torch.cat(parts, dim=1)
        return features.index_select(1, self.inverse_index.to(features.device))

    def __repr__(self) -> str:
        return (f"GraphTemplate(nodes={self.num_nodes}, edges={self.num_edges}, "
                f"params={self.num_params}, encoding={self.encoding!r})")
