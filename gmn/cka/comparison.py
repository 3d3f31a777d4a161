"""`compare`: two models' layer × layer CKA over a whole data set, streamed in one pass."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from .approximate import MinibatchGrid, RandomFourierFeatures
from .estimators import Estimator
from .matrix import CKAMatrix, cka_matrix
from .statistics import check_permutations
from .streaming import CKAGrid

METHODS = ("exact", "minibatch", "rff")


def _layer_lists(layers) -> tuple[Sequence[str] | None, Sequence[str] | None]:
    """``None``, one list for both models, or a pair ``(layers_a, layers_b)``."""
    if layers is None:
        return None, None
    if (
        isinstance(layers, tuple)
        and len(layers) == 2
        and all(item is None or not isinstance(item, str) for item in layers)
    ):
        return layers
    return layers, layers


def _batches(loader_a: Iterable, loader_b: Iterable | None):
    if loader_b is None:
        for batch in loader_a:
            yield batch, batch
        return
    sentinel = object()
    iter_a, iter_b = iter(loader_a), iter(loader_b)
    while True:
        batch_a, batch_b = next(iter_a, sentinel), next(iter_b, sentinel)
        if batch_a is sentinel and batch_b is sentinel:
            return
        if batch_a is sentinel or batch_b is sentinel:
            shorter = "loader_a" if batch_a is sentinel else "loader_b"
            raise ValueError(f"{shorter} ran out of batches before the other loader")
        yield batch_a, batch_b


class FirstSamples:
    """``on_batch`` hook of :func:`stream` that keeps the states of the first ``limit``
    samples of both models; :meth:`states` gives ``({state: Tensor[min(limit, n), d]}, …)``
    for the rows' and the columns' model."""

    def __init__(self, limit: int):
        self.limit, self.n = limit, 0
        self.parts: tuple[dict, dict] = ({}, {})

    def __call__(self, rows: dict[str, torch.Tensor], cols: dict[str, torch.Tensor]) -> None:
        room = self.limit - self.n
        if room <= 0:
            return
        for parts, states in zip(self.parts, (rows, cols)):
            for name, state in states.items():
                parts.setdefault(name, []).append(state[:room])
        self.n += min(room, len(next(iter(rows.values()))))

    def states(self, rows: Sequence[str] | None = None,
               cols: Sequence[str] | None = None) -> tuple[dict, dict]:
        """The kept states of ``rows`` and ``cols`` (default: all, as probed), in that order."""
        kept_rows, kept_cols = self.parts
        return (
            {name: torch.cat(kept_rows[name]) for name in (rows or kept_rows)},
            {name: torch.cat(kept_cols[name]) for name in (cols or kept_cols)},
        )


def stream(
    model_a: nn.Module,
    model_b: nn.Module,
    loader_a: Iterable,
    loader_b: Iterable | None = None,
    *,
    layers=None,
    method: str = "exact",
    keep: Callable[[str], bool] | None = None,
    forward: Callable | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    on_batch: Callable[[dict, dict], None] | None = None,
    kernel: str = "linear",
    rff_features: int = 2048,
    threshold: float = 1.0,
    seed: int = 0,
    all_reduce: bool | None = None,
    group=None,
) -> CKAGrid | MinibatchGrid:
    """Run both models over the loaders once and return the filled grid.

    Args:
        model_a, model_b: any ``nn.Module`` (a GMN gives its per-graph pooled states).
        loader_a: batches for ``model_a``; also for ``model_b`` when ``loader_b`` is None.
        loader_b: batches for ``model_b``, holding the same samples in the same order
            (e.g. images for a CNN and their INRs for a GMN); same number of batches.
        layers: module names for both models, a pair ``(layers_a, layers_b)``, or None
            (``gmn.probe``'s defaults).
        method: ``"exact"`` (a :class:`~gmn.cka.CKAGrid`: linear CKA of all samples, memory
            ``O(L_a·L_b·d²)`` independent of n; its :meth:`~gmn.cka.CKAGrid.compute` gives
            the biased and the debiased matrix from the same state), ``"minibatch"`` (a
            :class:`~gmn.cka.MinibatchGrid`: Nguyen et al.'s estimator, an approximation whose
            memory does not grow with d; always debiased; ``kernel="rbf"`` for the RBF
            kernel) or ``"rff"`` (a ``CKAGrid`` of ``rff_features`` random Fourier features
            per layer: RBF CKA approximated by linear CKA, bandwidth ``threshold`` × the first
            batch's median distance, draws from ``seed``).
        keep: ``keep(state_name) -> bool`` picks probed states.
        forward: ``forward(model, batch)``; device: where batches are moved.
        dtype: states are cast to it before they enter the grid (``torch.float64`` makes
            the products float64 too).
        on_batch: ``on_batch(rows, cols)`` sees each batch's kept states ``{name: [b, d]}``,
            as probed, before any cast: e.g. to keep a bounded sample for permutation tests.
        all_reduce: sum over the ranks of ``group`` (default: when ``torch.distributed`` is
            initialised; each rank feeds its own shard).
    """
    from gmn.batches import move_to
    from gmn.probing import default_forward, probe

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    forward = forward or default_forward
    layers_a, layers_b = _layer_lists(layers)
    grid = MinibatchGrid(kernel, threshold) if method == "minibatch" else CKAGrid()
    maps: dict[tuple[str, str], RandomFourierFeatures] = {}

    def kept(recorder, batch) -> dict:
        states = recorder.run(batch, forward)
        return {k: v for k, v in states.items() if keep is None or keep(k)}

    def featurise(side: str, states: dict) -> dict:
        if dtype is not None:
            states = {k: v.to(dtype) for k, v in states.items()}
        if method != "rff":
            return states
        out = {}
        for k, v in states.items():
            if (side, k) not in maps:
                maps[side, k] = RandomFourierFeatures(rff_features, threshold, seed)
            out[k] = maps[side, k](v, f"{side}[{k!r}]")
        return out

    was_training = model_a.training, model_b.training
    model_a.eval()
    model_b.eval()
    try:
        with (
            torch.no_grad(),
            probe(model_a, layers_a) as probe_a,
            probe(model_b, layers_b) as probe_b,
        ):
            for batch_a, batch_b in _batches(loader_a, loader_b):
                if device is not None:
                    batch_a = move_to(batch_a, torch.device(device))
                    batch_b = (
                        batch_a if loader_b is None else move_to(batch_b, torch.device(device))
                    )
                rows, cols = kept(probe_a, batch_a), kept(probe_b, batch_b)
                if on_batch is not None:
                    on_batch(rows, cols)
                grid.update(featurise("rows", rows), featurise("cols", cols))
    finally:
        model_a.train(was_training[0])
        model_b.train(was_training[1])
    if grid.names is None:
        raise ValueError("compare: the loader gave no batches")
    if all_reduce is None:
        import torch.distributed as dist

        all_reduce = dist.is_available() and dist.is_initialized()
    if all_reduce:
        grid.all_reduce(group)
    return grid


def compare(model_a: nn.Module, model_b: nn.Module, loader_a: Iterable,
            loader_b: Iterable | None = None, *, debiased: bool = False, permutations: int = 0,
            permutation_samples: int = 2000, **options) -> CKAMatrix:
    """Layer × layer CKA between two models over every batch of the loaders, in one pass.

    Args:
        model_a, model_b, loader_a, loader_b, options: those of :func:`stream` (``layers``,
            ``method``, ``keep``, ``forward``, ``device``, ``dtype``, ``on_batch``,
            ``kernel``, ``rff_features``, ``threshold``, ``seed``, ``all_reduce``, ``group``).
        debiased: unbiased HSIC (Song et al.) instead of the biased one (the minibatch method
            is always debiased).
        permutations: with the exact method, a permutation test of every cell with this
            many permutations (``cka_matrix``'s, drawn from ``seed``), on the states of the
            first ``permutation_samples`` samples, kept during the same pass (memory grows
            with that number, not with the data set). 0: no test.

    Returns:
        a :class:`CKAMatrix` ``[states of a, states of b]`` with the probed state names,
        ready for :func:`gmn.cka.plot_cka`, ``save`` and ``CKAMatrix.load``; with
        ``permutations``, its ``p_values`` and ``baseline`` (the values stay those of every
        sample; ``permutation_samples`` says how many samples the test saw).
    """
    method = options.get("method", "exact")
    check_permutations(permutations)
    if permutations and method != "exact":
        raise ValueError(f"permutation tests need method='exact', got method={method!r}")
    if permutations and permutation_samples < 4:  # the debiased estimator's minimum
        raise ValueError(f"permutation_samples must be ≥ 4, got {permutation_samples}")
    first = FirstSamples(permutation_samples) if permutations else None
    if first is not None:
        on_batch = options.pop("on_batch", None)

        def keep_first(rows: dict, cols: dict) -> None:
            first(rows, cols)
            if on_batch is not None:
                on_batch(rows, cols)

        options["on_batch"] = keep_first
    grid = stream(model_a, model_b, loader_a, loader_b, **options)
    if method == "minibatch":
        return grid.compute()
    matrix = grid.compute(debiased)
    if method == "rff":
        matrix.estimator = Estimator("rbf", debiased, options.get("threshold", 1.0))
    if first is not None:
        tested = cka_matrix(*first.states(matrix.row_names, matrix.col_names),
                            debiased=debiased, permutations=permutations,
                            seed=options.get("seed", 0))
        matrix.p_values, matrix.baseline = tested.p_values, tested.baseline
        matrix.permutations, matrix.permutation_samples = permutations, first.n
    return matrix
