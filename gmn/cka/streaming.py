"""Exact linear CKA between every layer of one model and every layer of another, streamed.

For two sides ``u, v`` (features ``[n, d_u]``, ``[n, d_v]``, rows ``u_i``, ``v_i``) with
squared row norms ``a_i = ‖u_i‖²``, ``b_i = ‖v_i‖²``, the debiased and biased linear HSIC
need only sums over samples (see ``estimators.linear_hsic``), and so do the Procrustes
similarity and the canonical correlations (``measures.py``). :class:`CKAGrid` keeps those
sums in float64, measured from a reference origin close to the mean so that large feature
means do not cancel catastrophically; :func:`translate_pair` and :func:`translate_side`
move them to another origin exactly.

A side (one layer) keeps ``s = Σ u_i`` ``[d_u]``, ``a = Σ a_i`` and its own pair sums
(with itself). A pair ``(u, v)`` keeps ``S = Σ u_i v_iᵀ`` ``[d_u, d_v]``,
``aa = Σ a_i b_i``, ``ua = Σ u_i b_i`` ``[d_u]`` and ``va = Σ v_i a_i`` ``[d_v]``; a side's
pair with itself stores no ``va`` (it equals ``ua``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .estimators import (
    Estimator,
    as_samples,
    check_sample_count,
    cka_from_hsic,
    column_sums,
    defined_self_hsic,
    finite_column_sums,
    inner_products,
    linear_hsic,
    named_layers,
    row_sq_norms,
)
from .matrix import CKAMatrix
from .measures import canonical_analysis, procrustes_from_moments, whitening

SIDES = ("rows", "cols")
Sums = dict[str, Tensor]


def batch_layers(rows, cols, names: dict[str, list[str]] | None) -> dict[str, dict]:
    """One batch's layers ``{side: {name: [b, ...]}}`` from ``rows`` and ``cols`` (dicts or
    lists, :func:`~gmn.cka.estimators.named_layers`), checked against ``names``, the layers of
    the earlier batches (None: this is the first)."""
    batch = {side: named_layers(layers, side) for side, layers in zip(SIDES, (rows, cols))}
    for side in SIDES:
        if names is not None and list(batch[side]) != names[side]:
            raise ValueError(
                f"this batch's {side} layers are {list(batch[side])}, earlier ones {names[side]}"
            )
    return batch


class CKAGrid:
    """Streams paired minibatches of two models' layers into exact linear CKA for every
    (row layer, column layer) cell.

    Each layer keeps its own sums (mean, squared norms, ``Σ u uᵀ``, ...; ``moments.py``)
    once, shared by its whole row or column; each cell keeps only its cross sums
    ``Σ u vᵀ`` ``[d_u, d_v]`` and three smaller ones. Memory is
    ``O(Σ d_u² + Σ d_v² + Σ d_u·d_v)`` float64 numbers, independent of the number of
    samples, and :meth:`compute` returns the biased or debiased CKA of all samples seen,
    equal to :func:`gmn.cka.cka_matrix` on the concatenated data up to rounding.

    Sums are measured from each layer's first-batch mean (rounded to the input dtype, the
    values actually subtracted) so that large means do not cancel. Grids merge
    (:meth:`merge`) and all-reduce across ``torch.distributed`` ranks (:meth:`all_reduce`).
    Feed tensors that do not require grad (numpy arrays work too).
    """

    def __init__(self):
        self.n = 0
        self.names: dict[str, list[str]] | None = None
        self.origin: dict[str, dict[str, Tensor]] = {side: {} for side in SIDES}
        self.layers: dict[str, dict[str, Sums]] = {side: {} for side in SIDES}
        self.cells: dict[tuple[str, str], Sums] = {}
        # per-feature minimum and maximum seen, to recognise a layer without variance
        self.low: dict[str, dict[str, Tensor]] = {side: {} for side in SIDES}
        self.high: dict[str, dict[str, Tensor]] = {side: {} for side in SIDES}

    def update(self, rows, cols) -> CKAGrid:
        """Add one batch: ``rows`` and ``cols`` map layer names to ``[b, ...]`` states of the
        same ``b`` samples (lists are named ``"0"``, ``"1"``, ...)."""
        batch = batch_layers(rows, cols, self.names)
        if self.names is None:
            self.names = {side: list(batch[side]) for side in SIDES}
        shifted, sq_norms, sums, size = {}, {}, {}, None
        for side in SIDES:
            for name, state in batch[side].items():
                key = f"{side}[{name!r}]"
                features = as_samples(state, key)
                if size is None:
                    size = features.shape[0]
                elif features.shape[0] != size:
                    raise ValueError(
                        f"{key} has {features.shape[0]} rows in this batch, not {size}"
                    )
                column_total = finite_column_sums(features, key)
                origin = self.origin[side].get(name)
                if origin is None:
                    origin = (column_total / size).to(features.dtype).to(torch.float64)
                    self.origin[side][name] = origin
                elif features.shape[1] != origin.shape[0]:
                    raise ValueError(
                        f"{key} has {features.shape[1]} features per sample in this batch but "
                        f"{origin.shape[0]} in earlier ones"
                    )
                # two plain reductions: aminmax over dim 0 is slower on CPU
                low, high = features.amin(dim=0), features.amax(dim=0)
                self._widen(side, name, low.double(), high.double())
                moved = features - origin.to(features.dtype)
                sums[side, name], sq_norms[side, name] = side_sums(moved)
                shifted[side, name] = moved
        for side in SIDES:
            for name in self.names[side]:
                self.layers[side][name] = add(self.layers[side].get(name), sums[side, name])
        for row in self.names["rows"]:
            for col in self.names["cols"]:
                cross = pair_sums(
                    shifted["rows", row],
                    shifted["cols", col],
                    sq_norms["rows", row],
                    sq_norms["cols", col],
                )
                self.cells[row, col] = add(self.cells.get((row, col)), cross)
        self.n += size
        return self

    def _widen(self, side: str, name: str, low: Tensor, high: Tensor) -> None:
        lows, highs = self.low[side], self.high[side]
        lows[name] = torch.minimum(lows[name], low) if name in lows else low
        highs[name] = torch.maximum(highs[name], high) if name in highs else high

    def _moved(self, delta: dict[str, dict[str, Tensor]]) -> tuple[dict, dict]:
        """Every layer's and cell's sums moved by ``delta[side][name]`` (float64 ``[d]``)."""
        layers = {
            side: {k: translate_side(v, self.n, delta[side][k]) for k, v in sums.items()}
            for side, sums in self.layers.items()
        }
        cells = {
            (row, col): translate_pair(
                sums,
                self.layers["rows"][row],
                self.layers["cols"][col],
                self.n,
                delta["rows"][row],
                delta["cols"][col],
            )
            for (row, col), sums in self.cells.items()
        }
        return layers, cells

    def merge(self, other: CKAGrid) -> CKAGrid:
        """Add the samples seen by ``other`` (moved to this grid's origins)."""
        if other.n == 0:
            return self
        if self.n == 0:
            self.names = {k: list(v) for k, v in other.names.items()}
            self.origin = {side: dict(v) for side, v in other.origin.items()}
            self.layers = {side: dict(v) for side, v in other.layers.items()}
            self.cells = dict(other.cells)
            self.low = {side: dict(v) for side, v in other.low.items()}
            self.high = {side: dict(v) for side, v in other.high.items()}
            self.n = other.n
            return self
        self._check_layout(other.names, other.origin, "the other grid")
        delta = {
            side: {k: self.origin[side][k] - other.origin[side][k] for k in self.names[side]}
            for side in SIDES
        }
        layers, cells = other._moved(delta)
        for side in SIDES:
            for name in self.names[side]:
                self.layers[side][name] = add(self.layers[side][name], layers[side][name])
                self._widen(side, name, other.low[side][name], other.high[side][name])
        self.cells = {key: add(sums, cells[key]) for key, sums in self.cells.items()}
        self.n += other.n
        return self

    def _check_layout(self, names, origin, what: str) -> None:
        for side in SIDES:
            if names[side] != self.names[side]:
                raise ValueError(
                    f"cannot merge: {what} has {side} layers {names[side]}, this one "
                    f"{self.names[side]}"
                )
            for name in names[side]:
                mine, theirs = self.origin[side][name].shape[0], origin[side][name].shape[0]
                if mine != theirs:
                    raise ValueError(
                        f"cannot merge: {side}[{name!r}] has {theirs} features in {what} "
                        f"and {mine} in this one"
                    )

    def _layout(self):
        if self.n == 0:
            return None
        dims = {s: {k: int(v.shape[0]) for k, v in self.origin[s].items()} for s in SIDES}
        return self.names, dims

    def all_reduce(self, group=None) -> CKAGrid:
        """Sum the state over all ranks of ``group`` in place; every rank ends equal.

        The ranks first agree on each layer's global mean as the common origin. A rank
        that saw no batch takes part with zero sums.
        """
        import torch.distributed as dist

        layouts = [None] * dist.get_world_size(group)
        dist.all_gather_object(layouts, self._layout(), group=group)
        known = [layout for layout in layouts if layout is not None]
        if not known:
            raise ValueError("all_reduce: no rank has seen any sample")
        names, dims = known[0]
        if any(layout != known[0] for layout in known):
            raise ValueError(f"all_reduce: the ranks saw different layers: {known}")
        if self.n == 0:
            self._start_empty(names, dims)
        device = next(iter(self.origin["rows"].values())).device
        count = torch.tensor([float(self.n)], dtype=torch.float64, device=device)
        dist.all_reduce(count, group=group)
        totals = {
            side: {
                k: self.layers[side][k]["s"] + self.n * self.origin[side][k] for k in names[side]
            }
            for side in SIDES
        }
        for side in SIDES:
            for total in totals[side].values():
                dist.all_reduce(total, group=group)
        mean = {side: {k: t / count for k, t in totals[side].items()} for side in SIDES}
        delta = {
            side: {k: mean[side][k] - self.origin[side][k] for k in names[side]} for side in SIDES
        }
        layers, cells = self._moved(delta)
        for sums in (*layers["rows"].values(), *layers["cols"].values(), *cells.values()):
            for tensor in sums.values():
                dist.all_reduce(tensor, group=group)
        for side in SIDES:
            for name in names[side]:
                dist.all_reduce(self.low[side][name], op=dist.ReduceOp.MIN, group=group)
                dist.all_reduce(self.high[side][name], op=dist.ReduceOp.MAX, group=group)
        self.origin, self.layers, self.cells, self.n = mean, layers, cells, int(count.item())
        return self

    def _start_empty(self, names, dims) -> None:
        """Zero sums for a rank that saw no batch, laid out like the other ranks'."""
        self.names = {side: list(v) for side, v in names.items()}
        for side in SIDES:
            for name, d in dims[side].items():
                self.origin[side][name] = torch.zeros(d, dtype=torch.float64)
                self.layers[side][name] = side_sums(torch.zeros(0, d, dtype=torch.float64))[0]
                self.low[side][name] = torch.full((d,), float("inf"), dtype=torch.float64)
                self.high[side][name] = torch.full((d,), -float("inf"), dtype=torch.float64)
        for row in self.names["rows"]:
            for col in self.names["cols"]:
                fu = torch.zeros(0, dims["rows"][row], dtype=torch.float64)
                fv = torch.zeros(0, dims["cols"][col], dtype=torch.float64)
                no_norms = torch.zeros(0, dtype=torch.float64)
                self.cells[row, col] = pair_sums(fu, fv, no_norms, no_norms)

    def centred(self) -> tuple[dict, dict]:
        """Every layer's and cell's sums about the mean of all samples seen (a copy as big as
        the grid). Pass it as ``centred=`` to :meth:`compute`, :meth:`procrustes` and
        :meth:`cca` to read several matrices out of one centring."""
        if self.n == 0:
            raise ValueError("CKAGrid: no batch seen yet")
        delta = {side: {k: v["s"] / self.n for k, v in self.layers[side].items()} for side in SIDES}
        return self._moved(delta)

    def constant(self, side: str, name: str) -> bool:
        """Whether every sample of that layer was identical (checked exactly)."""
        return torch.equal(self.low[side][name], self.high[side][name])

    def compute(self, debiased: bool = False, *, centred: tuple | None = None) -> CKAMatrix:
        """The CKA matrix of all samples seen: ``values`` ``[rows, cols]`` float64 with the
        layer names; NaN (with a warning) for a layer without variance. ``centred``: what
        :meth:`centred` returned for the grid as it is now (computed when None)."""
        check_sample_count(self.n, debiased)
        layers, cells = centred or self.centred()
        self_hsic = {}
        for side in SIDES:
            values = []
            for name, sums in layers[side].items():
                constant = self.constant(side, name)
                value = (torch.zeros_like(sums["a"]) if constant
                         else _hsic(self.n, sums, sums, sums, debiased))
                values.append(defined_self_hsic(value, f"{side}[{name!r}]", constant, self.n))
            self_hsic[side] = torch.stack(values)
        rows, cols = self.names["rows"], self.names["cols"]
        cross = torch.stack([
            torch.stack([
                _hsic(self.n, cells[row, col], layers["rows"][row], layers["cols"][col], debiased)
                for col in cols
            ])
            for row in rows
        ])
        values = cka_from_hsic(cross, self_hsic["rows"][:, None], self_hsic["cols"][None, :])
        return CKAMatrix(
            values=values.cpu(),
            row_names=list(rows),
            col_names=list(cols),
            estimator=Estimator("linear", debiased),
        )

    def procrustes(self, *, centred: tuple | None = None) -> CKAMatrix:
        """Procrustes similarity ``‖XᵀY‖_*`` of centred, unit-norm layers (see
        ``measures.py``) for every cell, from the same streamed sums (``centred`` as in
        :meth:`compute`)."""
        layers, cells = centred or self.centred()
        return self._readout("procrustes", lambda row, col: procrustes_from_moments(
            cells[row, col]["S"], layers["rows"][row]["a"], layers["cols"][col]["a"]))

    def cca(self, *, centred: tuple | None = None) -> CKAMatrix:
        """Mean canonical correlation for every cell from the streamed moments, computed as
        the in-memory ``gmn.cka.mean_cca`` computes it (``measures.canonical_analysis``;
        ``centred`` as in :meth:`compute`)."""
        layers, cells = centred or self.centred()
        whiten = {(side, name): whitening(sums["S"])
                  for side in SIDES for name, sums in layers[side].items()}
        return self._readout("cca", lambda row, col: canonical_analysis(
            whiten["rows", row], whiten["cols", col], cells[row, col]["S"], self.n)[0].mean())

    def _readout(self, measure: str, cell) -> CKAMatrix:
        """``cell(row, col)`` (a float64 scalar) for every cell, as a matrix of ``measure``."""
        rows, cols = self.names["rows"], self.names["cols"]
        values = torch.tensor([[float(cell(row, col)) for col in cols] for row in rows],
                              dtype=torch.float64)
        return CKAMatrix(values, list(rows), list(cols), measure=measure)


def _hsic(n: int, pair: Sums, u: Sums, v: Sums, debiased: bool) -> Tensor:
    """Linear HSIC from centred pair sums and the two sides' centred sums."""
    return linear_hsic(n, pair["S"].square().sum(), pair["aa"], u["a"], v["a"], debiased)


# ---- sums over samples and their change of origin ----------------------------------------


def side_sums(features: Tensor) -> tuple[Sums, Tensor]:
    """One batch of one layer, ``features`` ``[b, d]`` (already shifted to the origin):
    its side sums and its squared row norms ``[b]`` (float64)."""
    sq_norms = row_sq_norms(features)
    sums = {
        "s": column_sums(features),
        "a": sq_norms.sum(),
        "S": inner_products(features, features),
        "aa": sq_norms.square().sum(),
        "ua": inner_products(features, sq_norms.to(features.dtype)[:, None])[:, 0],
    }
    return sums, sq_norms


def pair_sums(fu: Tensor, fv: Tensor, sq_u: Tensor, sq_v: Tensor) -> Sums:
    """One batch of the pair ``(u, v)``: features ``[b, d_u]``, ``[b, d_v]`` and their
    squared row norms ``[b]``."""
    return {
        "S": inner_products(fu, fv),
        "aa": (sq_u * sq_v).sum(),
        "ua": inner_products(fu, sq_v.to(fu.dtype)[:, None])[:, 0],
        "va": inner_products(fv, sq_u.to(fv.dtype)[:, None])[:, 0],
    }


def add(total: Sums | None, more: Sums) -> Sums:
    """Key-wise sum (``total`` None: a copy of ``more``)."""
    return dict(more) if total is None else {k: v + more[k] for k, v in total.items()}


def translate_pair(pair: Sums, u: Sums, v: Sums, n: int, du: Tensor, dv: Tensor) -> Sums:
    """The pair sums for features ``u - du``, ``v - dv`` (float64 ``[d_u]``, ``[d_v]``);
    ``u``, ``v``: the two sides' sums (``s``, ``a``) before the move."""
    su, sv, au, av = u["s"], v["s"], u["a"], v["a"]
    cross, ua = pair["S"], pair["ua"]
    va = pair.get("va", ua)
    du2, dv2 = du @ du, dv @ dv
    moved = {
        "S": cross - torch.outer(du, sv) - torch.outer(su, dv) + n * torch.outer(du, dv),
        "aa": pair["aa"]
        - 2 * (du @ ua + dv @ va)
        + dv2 * au
        + du2 * av
        + 4 * (du @ cross @ dv)
        - 2 * dv2 * (du @ su)
        - 2 * du2 * (dv @ sv)
        + n * du2 * dv2,
        "ua": ua - 2 * cross @ dv + dv2 * su - du * av + 2 * du * (dv @ sv) - n * dv2 * du,
    }
    if "va" in pair:
        moved["va"] = va - 2 * cross.T @ du + du2 * sv - dv * au + 2 * dv * (du @ su) - n * du2 * dv
    return moved


def translate_side(side: Sums, n: int, delta: Tensor) -> Sums:
    """A side's sums for features ``u - delta`` (float64 ``[d_u]``)."""
    moved = translate_pair(side, side, side, n, delta, delta)
    moved["s"] = side["s"] - n * delta
    moved["a"] = side["a"] - 2 * (delta @ side["s"]) + n * (delta @ delta)
    return moved
