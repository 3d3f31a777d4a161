"""Per-layer normalisation of stacked parameters: one mean and std per state_dict entry
(each layer's weights, each layer's biases), computed on the training split."""

from __future__ import annotations

from torch import Tensor


def layer_statistics(params: dict[str, Tensor]) -> dict[str, dict[str, float]]:
    """``{key: {"mean", "std"}}`` over all INRs and entries of each key (float64 sums)."""
    stats = {}
    for key, value in params.items():
        flat = value.reshape(-1).double()
        if flat.numel() < 2:
            raise ValueError(f"need at least 2 values of {key!r} for a std, got {flat.numel()}")
        stats[key] = {"mean": flat.mean().item(), "std": flat.std().item()}
    return stats


class Normalize:
    """``(p - mean) / std`` per key, on a stacked dict ``{key: Tensor[n, *shape]}``.

    A key whose std is 0 (e.g. a constant bias) is only centred.
    """

    def __init__(self, stats: dict[str, dict[str, float]]):
        self.stats = stats

    def _check(self, params: dict[str, Tensor]) -> None:
        missing = set(params) - set(self.stats)
        if missing:
            raise KeyError(f"no normalisation statistics for {sorted(missing)}")

    def __call__(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        self._check(params)
        return {
            k: (v - self.stats[k]["mean"]) / (self.stats[k]["std"] or 1.0)
            for k, v in params.items()
        }

    def inverse(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        self._check(params)
        return {
            k: v * (self.stats[k]["std"] or 1.0) + self.stats[k]["mean"]
            for k, v in params.items()
        }

    def __repr__(self) -> str:
        return f"Normalize({len(self.stats)} keys)"



