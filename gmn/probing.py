"""`probe`: record the hidden states of any model, one row per input sample.

May import: gmn.nn, gmn.scatter, gmn.batches.

``with gmn.probe(model, layers=[...]) as p: model(inputs)`` hooks the named modules; after
the forward, ``p.states()`` is ``{name: Tensor[n_samples, d]}``. Two kinds of module:

* a module that returns a :class:`gmn.nn.GraphState` (node [N, d], edge [E, d], graph
  [B, d] | None) given a :class:`gmn.nn.GraphContext` (every block of :mod:`gmn.nn`, e.g.
  each ``GMNLayer`` of a ``gmn.nn.GMN``) gives per-graph pooled states, one row per input
  network:
  ``name/node_mean`` [B, d], ``name/edge_mean`` [B, d], ``name/node_type_mean``
  [B, num_node_types * d] (0 for types a graph lacks), ``name/graph`` [B, d] when the layer
  keeps a graph state, and with ``node_level=True`` ``name/nodes`` [N, d] and
  ``name/edges`` [E, d] (one row per neuron / weight, not per sample);
* a module that returns :class:`gmn.nn.WeightSpaceFeatures` (an NFN block) gives
  ``name/layer_mean`` [B, 2 L C], every layer's mean weight and bias feature (invariant to
  neuron permutations);
* any other module (layers of an image MLP, CNN or ViT): ``name``, its output flattened
  per sample, [B, prod(rest)].

States are detached and copied at capture (a later in-place op cannot change them), and
optionally moved to the CPU. Hooks are removed when the ``with`` block ends, also on error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from gmn.batches import is_graph_data, move_to
from gmn.nn.context import GraphContext
from gmn.nn.nfn import WeightSpaceFeatures
from gmn.nn.state import GraphState
from gmn.scatter import scatter


def default_layers(model: nn.Module) -> list[str]:
    """A GMN's message-passing layers and readout; otherwise the model's direct children,
    with a ``ModuleList``/``ModuleDict`` (never called itself) replaced by its items."""
    layers = getattr(model, "layers", None)
    if isinstance(layers, nn.ModuleList) and hasattr(model, "readout"):
        return [f"layers.{i}" for i in range(len(layers))] + ["readout"]
    names = []
    for name, child in model.named_children():
        if isinstance(child, (nn.ModuleList, nn.ModuleDict)):
            names += [f"{name}.{item}" for item, _ in child.named_children()]
        else:
            names.append(name)
    return names


def default_forward(model: nn.Module, batch) -> None:
    """``model(batch)`` for graphs and tensors, ``model(batch[0])`` for ``(inputs, targets)``."""
    if isinstance(batch, (tuple, list)) and not is_graph_data(batch):
        batch = batch[0]
    model(batch)


def _pooled_graph_states(h: Tensor, e: Tensor, u: Tensor | None,
                         ctx: GraphContext) -> dict[str, Tensor]:
    """Per-graph means of node and edge states ([B, d]) and per-node-type means."""
    b, t = ctx.num_graphs, ctx.num_node_types
    by_type = scatter(h, ctx.batch * t + ctx.node_type, b * t, "mean")
    out = {
        "node_mean": scatter(h, ctx.batch, b, "mean"),
        "edge_mean": scatter(e, ctx.edge_batch, b, "mean"),
        "node_type_mean": by_type.reshape(b, t * h.shape[-1]),
    }
    if u is not None:
        out["graph"] = u
    return out


def _batched_like(output: Tensor, args: tuple) -> bool:
    """Whether a 1-D ``output`` is one value per sample: the module's first tensor input has a
    batch dimension (≥ 2-D) of the same length. A 1-D input is an unbatched sample."""
    first = next((a for a in args if isinstance(a, Tensor)), None)
    return first is not None and first.dim() >= 2 and first.shape[0] == output.shape[0]


class Probe:
    """Hidden states recorded by :func:`probe`; see the module docstring."""

    def __init__(self, model: nn.Module, layers: Sequence[str] | None = None,
                 to_cpu: bool = False, node_level: bool = False):
        self.model = model
        self.to_cpu = to_cpu
        self.node_level = node_level
        modules = dict(model.named_modules())
        self.layers = list(default_layers(model) if layers is None else layers)
        missing = [name for name in self.layers if name not in modules]
        if missing:
            available = [name for name in modules if name][:40]
            raise KeyError(f"no module named {missing} in {type(model).__name__}; "
                           f"available (first 40): {available}")
        self._modules = {name: modules[name] for name in self.layers}
        self._handles = []
        self._records: dict[str, list[Tensor]] = {}
        self._calls: dict[str, int] = {}

    def _keep(self, tensor: Tensor) -> Tensor:
        tensor = tensor.detach()
        return tensor.to("cpu", copy=True) if self.to_cpu else tensor.clone()

    def _record(self, key: str, tensor: Tensor) -> None:
        self._records.setdefault(key, []).append(self._keep(tensor))

    def _hook(self, name: str) -> Callable:
        def hook(module, args, kwargs, output):
            self._calls[name] = self._calls.get(name, 0) + 1
            ctx = next((a for a in (*args, *kwargs.values()) if isinstance(a, GraphContext)),
                       None)
            if isinstance(output, GraphState):
                if ctx is None:
                    raise ValueError(f"probe: module {name!r} returned a GraphState but was "
                                     "given no GraphContext to pool it per graph")
                h, e, u = output
                for kind, state in _pooled_graph_states(h, e, u, ctx).items():
                    self._record(f"{name}/{kind}", state)
                if self.node_level:
                    self._record(f"{name}/nodes", h)
                    self._record(f"{name}/edges", e)
                return
            if isinstance(output, WeightSpaceFeatures):
                self._record(f"{name}/layer_mean", output.layer_means())
                return
            if isinstance(output, (tuple, list)):
                output = next((o for o in output if isinstance(o, Tensor)), None)
            if not isinstance(output, Tensor) or output.dim() == 0:
                raise TypeError(f"probe: module {name!r} returned no per-sample tensor")
            if output.dim() == 1 and not _batched_like(output, args):
                raise ValueError(
                    f"probe: module {name!r} returned a 1-D tensor of shape {tuple(output.shape)} "
                    "from an input without a batch dimension; probe batches [batch, ...] "
                    "(an unbatched input x becomes x.unsqueeze(0))"
                )
            self._record(name, output.flatten(1) if output.dim() > 1 else output.unsqueeze(1))

        return hook

    def attach(self) -> None:
        self._handles = [module.register_forward_hook(self._hook(name), with_kwargs=True)
                         for name, module in self._modules.items()]

    def remove(self) -> None:
        """Remove every hook (called when the ``with`` block ends)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def clear(self) -> None:
        """Forget what was recorded."""
        self._records, self._calls = {}, {}

    def states(self) -> dict[str, Tensor]:
        """``{name: Tensor[n_samples, d]}``: every recording so far, in call order."""
        return {key: torch.cat(parts) for key, parts in self._records.items()}

    def run(self, batch, forward: Callable = default_forward) -> dict[str, Tensor]:
        """The states of one batch (e.g. as ``fn`` for ``gmn.train.map_in_order``)."""
        self.clear()
        forward(self.model, batch)
        for name in self.layers:
            calls = self._calls.get(name, 0)
            if calls != 1:
                raise RuntimeError(f"probe: module {name!r} ran {calls} times in one forward; "
                                   "probe modules that run exactly once per input")
        return self.states()

    @torch.no_grad()
    def collect(self, loader: Iterable, forward: Callable = default_forward,
                device: str | torch.device | None = None) -> dict[str, Tensor]:
        """Run every batch of ``loader`` (in its order) and concatenate the states.

        Args:
            loader: an iterable of batches (a ``DataLoader``, PyG ``DataLoader``, a list).
            forward: ``forward(model, batch)`` runs the model (default: see
                :func:`default_forward`).
            device: where batches are moved first (default: left where they are).

        Returns:
            ``{name: Tensor[n_samples, d]}`` in input order.
        """
        per_batch = []
        for batch in loader:
            if device is not None:
                batch = move_to(batch, torch.device(device))
            per_batch.append(self.run(batch, forward))
        self.clear()
        if not per_batch:
            raise ValueError("probe.collect: the loader gave no batches")
        return {key: torch.cat([states[key] for states in per_batch]) for key in per_batch[0]}


@contextmanager
def probe(model: nn.Module, layers: Sequence[str] | None = None, to_cpu: bool = False,
          node_level: bool = False):
    """Record hidden states of ``model`` inside a ``with`` block.

    Args:
        model: a ``gmn.nn.GMN`` or any ``nn.Module``.
        layers: module names (as in ``model.named_modules()``); default: a GMN's layers and
            readout, or the model's direct children.
        to_cpu: move states to the CPU at capture (frees accelerator memory).
        node_level: for graph layers, also keep per-node and per-edge states.

    Yields:
        a :class:`Probe`: ``states()``, ``run(batch)``, ``collect(loader)``, ``clear()``.

    Raises:
        KeyError: naming a layer the model does not have.
    """
    recorder = Probe(model, layers, to_cpu, node_level)
    recorder.attach()
    try:
        yield recorder
    finally:
        recorder.remove()
