"""SIREN: the implicit neural representation fitted to each image.

Two conventions are in use by the public INR zoos:

* ``"dwsnets"`` (default): ``seq.{i}.weight/bias`` linear layers, sine after every
  hidden layer with ω₀ = 30, PyTorch's default ``nn.Linear`` initialisation, and
  ``+0.5`` added to the output.
* ``"standard"`` (Sitzmann et al., the NFN SIREN data): SIREN initialisation
  (first layer U(-1/in, 1/in), others U(-√(6/in)/ω₀, √(6/in)/ω₀)), no output offset.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn


class Sine(nn.Module):
    """``sin(w0 * x)``, the SIREN activation."""

    def __init__(self, w0: float = 30.0):
        super().__init__()
        self.w0 = float(w0)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.w0 * x)

    def extra_repr(self) -> str:
        return f"w0={self.w0}"


class Siren(nn.Module):
    """A SIREN ``in_features → hidden… → out_features``.

    Args:
        in_features: coordinate dimension (2 for images).
        hidden: widths of the hidden layers, e.g. ``(32, 32)``.
        out_features: channels (1 for grey images).
        w0: sine frequency ω₀.
        style: ``"dwsnets"`` or ``"standard"`` (see the module docstring).

    Shapes: ``forward`` maps [..., in_features] coordinates in [-1, 1] to [..., out_features].
    """

    def __init__(
        self,
        in_features: int = 2,
        hidden: tuple[int, ...] = (32, 32),
        out_features: int = 1,
        w0: float = 30.0,
        style: str = "dwsnets",
    ):
        super().__init__()
        if style not in ("dwsnets", "standard"):
            raise ValueError(f"style must be 'dwsnets' or 'standard', got {style!r}")
        widths = [in_features, *hidden, out_features]
        self.seq = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.act = Sine(w0)
        self.style = style
        self.output_offset = 0.5 if style == "dwsnets" else 0.0
        if style == "standard":
            self._siren_init(w0)

    @torch.no_grad()
    def _siren_init(self, w0: float) -> None:
        for i, layer in enumerate(self.seq):
            bound, _ = init_bounds(i, layer.in_features, w0, "standard")
            layer.weight.uniform_(-bound, bound)

    def forward(self, coords: Tensor) -> Tensor:
        h = coords
        for layer in self.seq[:-1]:
            h = self.act(layer(h))
        return self.seq[-1](h) + self.output_offset


def init_bounds(layer: int, fan_in: int, w0: float, style: str) -> tuple[float, float]:
    """(weight bound, bias bound) of SIREN layer ``layer`` with ``fan_in`` inputs: its weights
    and biases start uniform in ±bound. Biases and ``"dwsnets"`` weights: ``nn.Linear``'s
    default, 1/√fan_in; ``"standard"`` weights: 1/fan_in in the first layer, √(6/fan_in)/ω₀
    after it (Sitzmann et al.)."""
    default = 1.0 / math.sqrt(fan_in)
    if style == "standard":
        return (1.0 / fan_in if layer == 0 else math.sqrt(6.0 / fan_in) / w0), default
    return default, default


@dataclass(frozen=True)
class SirenLayout:
    """The architecture of a SIREN: everything needed to rebuild it (``Siren(**asdict(layout))``).

    Parameters are named like ``Siren().state_dict()``: ``seq.{i}.weight`` [out, in] and
    ``seq.{i}.bias`` [out], layer by layer.
    """

    in_features: int = 2
    hidden: tuple[int, ...] = (32, 32)
    out_features: int = 1
    w0: float = 30.0
    style: str = "dwsnets"

    def __post_init__(self):
        if self.style not in ("dwsnets", "standard"):
            raise ValueError(f"style must be 'dwsnets' or 'standard', got {self.style!r}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))

    @property
    def widths(self) -> list[int]:
        return [self.in_features, *self.hidden, self.out_features]

    @property
    def num_layers(self) -> int:
        return len(self.hidden) + 1

    @property
    def output_offset(self) -> float:
        return 0.5 if self.style == "dwsnets" else 0.0

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """``{state_dict key: shape}`` in state_dict order."""
        shapes = {}
        for i, (fan_in, fan_out) in enumerate(zip(self.widths[:-1], self.widths[1:])):
            shapes[f"seq.{i}.weight"] = (fan_out, fan_in)
            shapes[f"seq.{i}.bias"] = (fan_out,)
        return shapes

    def to_dict(self) -> dict:
        return {**asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_dict(cls, config: dict) -> SirenLayout:
        return cls(**config)

    def build(self) -> Siren:
        return Siren(**asdict(self))


def grid_axes(height: int, width: int, device=None, dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """The pixel-centre coordinates of each axis in [-1, 1]: y [height] and x [width] (both
    ends included)."""
    ys = torch.linspace(-1.0, 1.0, height, device=device, dtype=dtype)
    xs = torch.linspace(-1.0, 1.0, width, device=device, dtype=dtype)
    return ys, xs


def image_grid(height: int, width: int, device=None, dtype=torch.float32) -> Tensor:
    """Pixel-centre coordinates in [-1, 1]², row-major: [height * width, 2] as (y, x): the one
    grid INRs are fitted, rendered and sampled on (:func:`grid_axes` per axis)."""
    ys, xs = grid_axes(height, width, device=device, dtype=dtype)
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)
