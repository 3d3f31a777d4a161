"""`Weights`: N networks of one architecture, the one currency of gmn's weight-space code.

A ``Weights`` holds a :class:`~gmn.graph.template.GraphTemplate`, the parameter matrix
``params`` [N, P] (floating entries of each state_dict, in template order) and the integer
buffers ``int_buffers`` [N, K] (BatchNorm ``num_batches_tracked``; zeros when unknown). It is
immutable: every operation returns a new ``Weights`` and never writes into the tensors it was
given. Augmentations, permutations, neuron activations, ``INRDataset`` and the zoo readers
take and return it; its views are

* :meth:`stacked`: ``{state_dict key: Tensor[N, *shape]}`` (views of ``params``);
* :meth:`state_dicts`: N state_dicts, loadable with ``strict=True``;
* :meth:`graphs`: one PyG ``Batch`` of N :class:`ParameterGraph` s (one gather, no loop);

and it is built from any of them with :meth:`from_state_dicts`, :meth:`from_stacked` and
:meth:`from_graphs`. ``len``, indexing (an int, a slice, an index tensor or list: a
``Weights`` of those networks) and :meth:`to` work as on a tensor of N rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from gmn import large_tensors

from .errors import ConversionError
from .template import GraphTemplate


class Weights:
    """N parameter sets of ``template``'s architecture (see the module docstring).

    Args:
        template: the architecture.
        params: [N, P] floating parameter matrix.
        int_buffers: [N, K] integer buffers (default: zeros).
        allow_nonfinite: accept NaN/inf parameters (otherwise a ``ConversionError`` names the
            first non-finite parameter and its sample).
    """

    __slots__ = ("template", "params", "int_buffers")

    def __init__(self, template: GraphTemplate, params: Tensor, int_buffers: Tensor | None = None,
                 *, allow_nonfinite: bool = False):
        if not isinstance(template, GraphTemplate):
            raise ConversionError(f"Weights needs a GraphTemplate, got {type(template).__name__}")
        if not isinstance(params, Tensor):
            raise ConversionError(
                f"Weights needs an [N, {template.num_params}] tensor, got "
                f"{type(params).__name__}; use Weights.from_state_dicts, from_stacked or "
                "from_graphs for the other forms")
        if params.dim() != 2 or params.shape[1] != template.num_params:
            raise ConversionError(f"a parameter matrix must be [N, {template.num_params}], got "
                                  f"{list(params.shape)}")
        if not params.is_floating_point():
            raise ConversionError(f"the parameter matrix has dtype {params.dtype}; a "
                                  "floating point tensor is expected")
        n = params.shape[0]
        if int_buffers is None:
            int_buffers = torch.zeros(n, template.int_width, dtype=torch.long,
                                      device=params.device)
        elif int_buffers.shape != (n, template.int_width):
            raise ConversionError(f"int_buffers must be [{n}, {template.int_width}] for {n} "
                                  f"networks of this template, got {list(int_buffers.shape)}")
        if not allow_nonfinite:
            template._check_finite(params)
        object.__setattr__(self, "template", template)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "int_buffers", int_buffers)

    def __setattr__(self, name, value):
        raise AttributeError(f"Weights is immutable (cannot set {name!r}); use with_params")

    # --- construction from the other forms --------------------------------------------------
    @classmethod
    def from_state_dicts(cls, template: GraphTemplate, state_dicts: Sequence[Mapping[str, Tensor]],
                         *, allow_nonfinite: bool = False) -> Weights:
        """N state_dicts (keys, shapes and dtypes checked against ``template``)."""
        if not state_dicts:
            raise ConversionError("no state_dicts to stack")
        params = torch.stack([template.flatten(sd, allow_nonfinite=True) for sd in state_dicts])
        columns = [torch.stack([sd[k].reshape(-1).long() for sd in state_dicts])
                   for k in template.int_entries]
        int_buffers = torch.cat(columns, dim=1).to(params.device) if columns else None
        return cls(template, params, int_buffers, allow_nonfinite=allow_nonfinite)

    @classmethod
    def from_stacked(cls, template: GraphTemplate, stacked: Mapping[str, Tensor], *,
                     allow_nonfinite: bool = False) -> Weights:
        """``{state_dict key: Tensor[N, *shape]}``; integer buffers may be left out (zeros)."""
        template._check_keys(stacked.keys(), allow_missing_int=True)
        n = len(stacked[template.keys[0]])
        parts = []
        for key in template.keys:
            tensor = stacked[key]
            if len(tensor) != n:
                raise ConversionError(f"stacked entry {key!r} holds {len(tensor)} samples, "
                                      f"{template.keys[0]!r} holds {n}")
            template._check_entry(key, tensor[0])
            parts.append(tensor.reshape(n, -1).to(template.dtype))
        params = large_tensors.cat(parts, dim=1)
        int_buffers = None
        if template.int_entries and all(k in stacked for k in template.int_entries):
            int_buffers = torch.cat([stacked[k].reshape(n, -1).long()
                                     for k in template.int_entries], dim=1).to(params.device)
        return cls(template, params, int_buffers, allow_nonfinite=allow_nonfinite)

    @classmethod
    def from_graphs(cls, graphs, template: GraphTemplate | None = None) -> Weights:
        """A ``ParameterGraph`` or a ``Batch`` of graphs of one template (default: the
        graphs' own ``template``)."""
        if template is None:
            template = getattr(graphs, "template", None)
            if isinstance(template, list):
                if any(t is not template[0] for t in template):
                    raise ConversionError("the batch holds several architectures; use "
                                          "gmn.graph.mixed_batches.to_state_dicts")
                template = template[0] if template else None
            if not isinstance(template, GraphTemplate):
                raise ConversionError("graph carries no template; pass template= (the "
                                      "GraphTemplate it was built with)")
        params = template.params_of(graphs)
        n = params.shape[0]
        int_buffers = getattr(graphs, "int_buffers", None)
        if int_buffers is not None:
            if int_buffers.numel() != n * template.int_width:
                raise ConversionError(f"int_buffers holds {int_buffers.numel()} values; {n} "
                                      f"graphs of this template hold {n * template.int_width}")
            int_buffers = int_buffers.reshape(n, template.int_width)
        return cls(template, params, int_buffers, allow_nonfinite=True)

    # --- the other forms ------------------------------------------------------------------
    def stacked(self) -> dict[str, Tensor]:
        """``{state_dict key: Tensor[N, *shape]}`` in state_dict order, integer buffers
        included (floating entries are views of ``params`` where the dtypes agree)."""
        t, n = self.template, len(self)
        pieces = self.params.split(t._numels, dim=1)
        out = {key: piece.reshape(n, *shape).to(dtype)
               for key, piece, shape, dtype in zip(t.keys, pieces, t.shapes, t.dtypes)}
        start = 0
        for key, (shape, dtype) in t.int_entries.items():
            out[key] = self.int_buffers[:, start:start + shape.numel()].reshape(n, *shape).to(dtype)
            start += shape.numel()
        return {key: out[key] for key in t.key_order}

    def state_dicts(self) -> list[dict[str, Tensor]]:
        """N state_dicts (loadable with ``strict=True``)."""
        stacked = self.stacked()
        return [{key: value[i] for key, value in stacked.items()} for i in range(len(self))]

    def graphs(self, y: Tensor | None = None, allow_nonfinite: bool = False):
        """One PyG ``Batch`` of the N parameter graphs, labelled ``y`` [N] when given (see
        ``GraphTemplate.batch``; NaN/inf parameters raise unless ``allow_nonfinite``)."""
        return self.template.batch(self.params, y=y, int_buffers=self.int_buffers,
                                   allow_nonfinite=allow_nonfinite)

    # --- tensor-like --------------------------------------------------------------------
    def with_params(self, params: Tensor) -> Weights:
        """The same networks' integer buffers with new parameters [N, P] (not checked for
        finiteness: transforms of checked weights)."""
        return Weights(self.template, params, self.int_buffers, allow_nonfinite=True)

    def replace(self, entries: Mapping[str, Tensor]) -> Weights:
        """New weights whose floating state_dict ``entries`` ``{key: Tensor[N, *shape]}`` are
        replaced (the others, and the integer buffers, are kept)."""
        t = self.template
        params = self.params.clone()
        for key, value in entries.items():
            if key not in t.keys:
                raise ConversionError(f"{key!r} is not a floating state_dict entry of this "
                                      f"template (entries: {t.keys})")
            index = t.keys.index(key)
            if value.shape != (len(self), *t.shapes[index]):
                raise ConversionError(f"replacement for {key!r} has shape {list(value.shape)}, "
                                      f"expected {[len(self), *t.shapes[index]]}")
            start = t.offsets[index]
            params[:, start:start + t._numels[index]] = value.reshape(len(self), -1)
        return self.with_params(params)

    def to(self, device=None, dtype: torch.dtype | None = None) -> Weights:
        """The weights on ``device`` (parameters in ``dtype`` when given)."""
        return Weights(self.template, self.params.to(device=device, dtype=dtype),
                       self.int_buffers.to(device), allow_nonfinite=True)

    def __len__(self) -> int:
        return self.params.shape[0]

    def __getitem__(self, index) -> Weights:
        if isinstance(index, int):
            if not -len(self) <= index < len(self):
                raise IndexError(f"network {index} of {len(self)}")
            index = slice(index % len(self), index % len(self) + 1)
        elif not isinstance(index, slice):
            index = torch.as_tensor(index, device=self.params.device)
            if not index.dtype == torch.bool:
                index = index.long()
            if index.dim() != 1:
                raise IndexError(f"Weights take a 1-d index, got shape {list(index.shape)}")
        return Weights(self.template, self.params[index], self.int_buffers[index],
                       allow_nonfinite=True)

    @property
    def device(self) -> torch.device:
        return self.params.device

    @property
    def dtype(self) -> torch.dtype:
        return self.params.dtype

    def __repr__(self) -> str:
        return (f"Weights({len(self)} networks, params={self.template.num_params}, "
                f"nodes={self.template.num_nodes}, dtype={self.dtype})")
