"""Per-layer normalisation of weights: one mean and std per state_dict entry (each layer's
weights, each layer's biases), computed on the training split."""

from __future__ import annotations

from gmn.graph.weights import Weights


def layer_statistics(weights: Weights) -> dict[str, dict[str, float]]:
    """``{key: {"mean", "std"}}`` over all networks and entries of each floating state_dict
    entry (float64 sums)."""
    stacked = weights.stacked()
    stats = {}
    for key in weights.template.keys:
        flat = stacked[key].reshape(-1).double()
        if flat.numel() < 2:
            raise ValueError(f"need at least 2 values of {key!r} for a std, got {flat.numel()}")
        stats[key] = {"mean": flat.mean().item(), "std": flat.std().item()}
    return stats


class Normalize:
    """``(p - mean) / std`` per floating state_dict entry of a :class:`Weights`.

    A key whose std is 0 (e.g. a constant bias) is only centred.
    """

    def __init__(self, stats: dict[str, dict[str, float]]):
        self.stats = stats

    def _check(self, weights: Weights) -> dict:
        missing = set(weights.template.keys) - set(self.stats)
        if missing:
            raise KeyError(f"no normalisation statistics for {sorted(missing)}")
        return weights.stacked()

    def __call__(self, weights: Weights) -> Weights:
        stacked = self._check(weights)
        return weights.replace({
            k: (stacked[k] - self.stats[k]["mean"]) / (self.stats[k]["std"] or 1.0)
            for k in weights.template.keys
        })

    def inverse(self, weights: Weights) -> Weights:
        stacked = self._check(weights)
        return weights.replace({
            k: stacked[k] * (self.stats[k]["std"] or 1.0) + self.stats[k]["mean"]
            for k in weights.template.keys
        })

    def __repr__(self) -> str:
        return f"Normalize({len(self.stats)} keys)"
