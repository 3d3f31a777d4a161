"""Stream two trained models over the test set into one CKA grid (stage "cka").

Image models and the weight MLP give each probed module's output flattened per sample.
A GMN layer gives, per input network, the mean node state of each node type
concatenated (``gmn.probe``'s ``node_type_mean``), an NFN block its mean weight and bias
feature per layer (``layer_mean``): one permutation-invariant vector per network and layer.

:func:`stream_pair` runs both models once over their own test inputs (images, or INR
parameters for the GMN families and the weight MLP: two loaders, one sample order) with
:func:`gmn.cka.comparison.stream`. What it holds does not grow with the number of test
samples n: one batch of states per model, the grid's float64 sums
(``O(Σ d_a² + Σ d_b² + Σ d_a·d_b)``), and the states of at most ``samples`` first test
samples, kept for the permutation tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from gmn.cka.comparison import FirstSamples, stream

PROBE_BATCH = 256
GRAPH_STATE = "node_type_mean"
WEIGHT_SPACE_STATE = "layer_mean"


@dataclass
class TrainedModel:
    """A trained run ready to probe: ``model`` (on its device), ``layers`` (the probed module
    names in model order) and ``test``, its ``(inputs, label)`` test set in split order."""

    model: nn.Module
    layers: list[str]
    test: Dataset


def _kept(state: str) -> bool:
    """A module's output, a GMN layer's per-node-type mean (its other pooled states are
    left out) or an NFN block's per-layer mean."""
    return state.partition("/")[2] in ("", GRAPH_STATE, WEIGHT_SPACE_STATE)


def _layer(state: str) -> str:
    return state.partition("/")[0]


def _by_layer(states: dict[str, Tensor], layers: list[str]) -> dict[str, Tensor]:
    """Probed states ``{state name: [n, d]}`` as ``{layer: [n, d]}`` in the order of ``layers``
    (one kept state per layer, :func:`_kept`)."""
    named = {_layer(name): state for name, state in states.items()}
    return {layer: named[layer] for layer in layers}


@dataclass
class StreamedPair:
    """What one pass over the test set gives for two models, rows and columns in model order
    and named by module (``rows``, ``cols``): linear CKA of all test samples, ``debiased``
    and ``biased`` ``[len(rows), len(cols)]`` float64, the ``procrustes`` similarity matrix
    when asked for, and the first samples' states when kept (``samples``)."""

    rows: list[str]
    cols: list[str]
    debiased: Tensor
    biased: Tensor
    procrustes: Tensor | None
    samples: tuple[dict[str, Tensor], dict[str, Tensor]] | None


def _in_order(matrix, rows: list[str], cols: list[str]) -> Tensor:
    """``matrix.values`` (rows and columns named by probed state) as ``[rows, cols]``."""
    have_rows = [_layer(name) for name in matrix.row_names]
    have_cols = [_layer(name) for name in matrix.col_names]
    return matrix.values[[have_rows.index(r) for r in rows]][:, [have_cols.index(c) for c in cols]]


def stream_pair(a: TrainedModel, b: TrainedModel, samples: int = 0, procrustes: bool = False,
                device: str | None = None) -> StreamedPair:
    """One pass of both models over the test set, ``PROBE_BATCH`` samples at a time.

    Args:
        a, b: the two models (rows, columns); their test sets hold the same samples in
            the same order.
        samples: keep the states of the first ``samples`` test samples (0: none).
        procrustes: also read the Procrustes similarity out of the grid.
        device: where batches are moved (the models' device).

    Returns:
        a :class:`StreamedPair`. States enter the grid as float64 (exact sums); the grid
        and its centred copy (as big again) are freed on return.
    """
    loader_a = DataLoader(a.test, batch_size=PROBE_BATCH, shuffle=False)
    loader_b = DataLoader(b.test, batch_size=PROBE_BATCH, shuffle=False)
    first = FirstSamples(samples) if samples > 0 else None
    grid = stream(a.model, b.model, loader_a, loader_b, layers=(a.layers, b.layers),
                  keep=_kept, device=device, dtype=torch.float64, on_batch=first)
    centred = grid.centred()
    return StreamedPair(
        list(a.layers),
        list(b.layers),
        *(_in_order(grid.compute(d, centred=centred), a.layers, b.layers) for d in (True, False)),
        _in_order(grid.procrustes(centred=centred), a.layers, b.layers) if procrustes else None,
        tuple(map(_by_layer, first.states(), (a.layers, b.layers))) if first else None,
    )
