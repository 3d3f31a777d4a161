"""Many SIRENs fitted at once: stacked parameters, batched matmuls, a hand-written backward.

Stacked parameters are ``{state_dict key: Tensor[B, *shape]}`` with the keys of
``SirenLayout.shapes()`` (the fitting engine's working form; :class:`gmn.graph.weights.Weights`
is the library's currency, ``Weights.from_stacked`` converts). :func:`render` draws SIRENs
through the one batched evaluation, :func:`gmn.graph.function_samples.network_outputs`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from gmn.graph.function_samples import network_outputs
from gmn.graph.weights import Weights
from gmn.models.siren import SirenLayout, grid_axes, image_grid, init_bounds

Params = dict[str, Tensor]


def init_params(layout: SirenLayout, seeds: list[int], dtype=torch.float32) -> Params:
    """Initial parameters of ``len(seeds)`` SIRENs, SIREN ``b`` drawn from its own ``seeds[b]``.

    Uniform in ± :func:`gmn.models.siren.init_bounds` (the ``Siren`` module's bounds). Returns
    ``{key: Tensor[len(seeds), *shape]}`` on the CPU; an INR's initialisation depends only on
    its seed, not on its batch.
    """
    unique, inverse = np.unique(np.asarray(seeds, dtype=np.int64), return_inverse=True)
    shapes = layout.shapes()
    drawn = {key: torch.empty(len(unique), *shape, dtype=dtype) for key, shape in shapes.items()}
    for row, seed in enumerate(unique.tolist()):
        generator = torch.Generator().manual_seed(seed)
        for i, fan_in in enumerate(layout.widths[:-1]):
            weight_bound, bias_bound = init_bounds(i, fan_in, layout.w0, layout.style)
            weight, bias = drawn[f"seq.{i}.weight"][row], drawn[f"seq.{i}.bias"][row]
            weight.uniform_(-weight_bound, weight_bound, generator=generator)
            bias.uniform_(-bias_bound, bias_bound, generator=generator)
    index = torch.from_numpy(inverse.reshape(-1))
    return {key: value[index] for key, value in drawn.items()}


def render(weights: Weights, height: int, width: int) -> Tensor:
    """Images drawn by B SIRENs on the pixel grid of ``image_grid``: [B, out_features, H, W]
    (evaluated by :func:`gmn.graph.function_samples.network_outputs`)."""
    coords = image_grid(height, width, device=weights.device, dtype=weights.dtype)
    out = network_outputs(weights, coords)  # [B, H*W, out_features]
    return out.transpose(1, 2).reshape(out.shape[0], out.shape[2], height, width)


class Workspace:
    """Named scratch tensors kept between calls of :func:`mse_and_grads`.

    A fit step's activations are tens of MB; allocating them afresh each step makes the CPU
    allocator map and zero new pages every time, which costs about a third of the step. A
    buffer grows when a larger batch asks for it; a smaller batch uses its front part.
    """

    def __init__(self):
        self._buffers: dict[str, Tensor] = {}

    def take(self, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """An uninitialised tensor of ``shape`` with ``like``'s dtype and device."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if (
            buffer is None
            or buffer.numel() < size
            or buffer.device != like.device
            or buffer.dtype != like.dtype
        ):
            buffer = torch.empty(size, dtype=like.dtype, device=like.device)
            self._buffers[name] = buffer
        return buffer[:size].view(shape)


def mse_and_grads(
    layout: SirenLayout,
    params: Params,
    height: int,
    width: int,
    targets: Tensor,
    workspace: Workspace | None = None,
) -> tuple[Tensor, Params]:
    """Per-SIREN mean squared error on the ``image_grid`` and its gradient.

    targets [B, height*width, out]; returns mse [B] and the gradients ``{key: Tensor[B, *shape]}``.
    The loss of SIREN ``b`` is the mean over its pixels and channels, so every SIREN's gradient
    depends on its own parameters only. The backward is written out (sin' = ω₀·cos). The grid
    is separable, so the first layer's sines come from sin/cos of its y and x parts by the
    angle-addition formula (``_first_layer``). The [B, H*W, width] activations live in
    ``workspace`` (a fresh one when None), so a caller that steps many times passes its own.
    """
    if workspace is None:
        workspace = Workspace()
    batch, pixels, channels = targets.shape
    w0 = layout.w0
    last = layout.num_layers - 1
    h, cosine = _first_layer(layout, params, height, width, workspace)
    inputs, cosines = [h], [cosine]  # inputs[i] feeds layer i + 1; cosines[i] = cos(ω₀ z_i)
    for i in range(1, last):
        # ω₀ is folded into the small weight and bias instead of scaling the big activations
        scaled_bias, scaled_weight = params[f"seq.{i}.bias"] * w0, params[f"seq.{i}.weight"] * w0
        shape = (batch, pixels, scaled_weight.shape[1])
        z = workspace.take(f"h{i}", shape, h)
        torch.baddbmm(scaled_bias.unsqueeze(1), h, scaled_weight.mT, out=z)
        cosines.append(torch.cos(z, out=workspace.take(f"cos{i}", shape, h)))
        h = z.sin_()
        inputs.append(h)
    residual = torch.baddbmm(
        params[f"seq.{last}.bias"].unsqueeze(1), h, params[f"seq.{last}.weight"].mT
    )
    residual.add_(layout.output_offset).sub_(targets)
    mse = residual.square().mean(dim=(1, 2))

    grads = {}
    grad_out = residual.mul_(2.0 / (pixels * channels))
    for i in range(last, 0, -1):
        grads[f"seq.{i}.weight"] = torch.bmm(grad_out.mT, inputs[i - 1])
        grads[f"seq.{i}.bias"] = grad_out.sum(dim=1)
        weight = params[f"seq.{i}.weight"] * w0  # sin(ω₀ z)' = ω₀ cos(ω₀ z)
        if weight.shape[1] == 1:  # one output channel: an outer product, done in place
            grad_out = cosines[i - 1].mul_(grad_out).mul_(weight)
        else:
            shape = (batch, pixels, weight.shape[2])
            grad_out = torch.bmm(grad_out, weight, out=workspace.take(f"grad{i}", shape, weight))
            grad_out.mul_(cosines[i - 1])
    grads.update(_first_layer_grads(grad_out, height, width))
    return mse, grads


def _first_layer(layout: SirenLayout, params: Params, height: int, width: int,
                 workspace: Workspace):
    """sin(ω₀ z) and cos(ω₀ z) of the first layer on the grid: two [B, H*W, K] tensors.

    z[b, (i, j), k] = w[b, k, 0]·y_i + w[b, k, 1]·x_j + bias[b, k] = row[b, i, k] + col[b, j, k],
    and sin(r + c) = sin r·cos c + cos r·sin c, cos(r + c) = cos r·cos c − sin r·sin c.
    """
    if layout.in_features != 2:
        raise ValueError(f"fitting needs 2-D coordinates, got in_features={layout.in_features}")
    weight, bias = params["seq.0.weight"], params["seq.0.bias"]  # [B, K, 2], [B, K]
    ys, xs = grid_axes(height, width, device=weight.device, dtype=weight.dtype)
    w0 = layout.w0
    row = torch.addcmul(bias.unsqueeze(1), ys[:, None], weight[:, None, :, 0]).mul_(w0)
    col = torch.mul(xs[:, None], weight[:, None, :, 1]).mul_(w0)  # [B, W, K]
    sin_row, cos_row = torch.sin(row).unsqueeze(2), torch.cos(row).unsqueeze(2)  # [B, H, 1, K]
    sin_col, cos_col = torch.sin(col).unsqueeze(1), torch.cos(col).unsqueeze(1)  # [B, 1, W, K]
    batch, hidden = bias.shape
    shape = (batch, height, width, hidden)
    h = torch.mul(sin_row, cos_col, out=workspace.take("h0", shape, weight))
    h.addcmul_(cos_row, sin_col)
    cosine = torch.mul(cos_row, cos_col, out=workspace.take("cos0", shape, weight))
    cosine.addcmul_(sin_row, sin_col, value=-1.0)
    return h.view(batch, height * width, hidden), cosine.view(batch, height * width, hidden)


def _first_layer_grads(grad_z: Tensor, height: int, width: int) -> Params:
    """First-layer weight/bias gradients from dL/dz [B, H*W, K] (z before ω₀) on the grid."""
    batch, _, hidden = grad_z.shape
    grid = grad_z.view(batch, height, width, hidden)
    ys, xs = grid_axes(height, width, device=grad_z.device, dtype=grad_z.dtype)
    per_row = grid.sum(dim=2)  # [B, H, K]
    per_col = grid.sum(dim=1)  # [B, W, K]
    weight_grad = torch.stack(
        [torch.einsum("bik,i->bk", per_row, ys), torch.einsum("bjk,j->bk", per_col, xs)], dim=2
    )
    return {"seq.0.weight": weight_grad, "seq.0.bias": per_row.sum(dim=1)}
