"""Train G ``ZooCNN`` s of one architecture at once: their parameters are stacked ([G, …] per
state_dict key) and run as grouped convolutions, so one step costs one conv call per layer.

Each model g has its own hyper-parameters: Adam learning rate and L2 weight decay, initial
weight scale, dropout before the head, the fraction of the training set it sees, and its
number of epochs. All models share the minibatch order; a model's loss counts only the samples
of its own training subset (BatchNorm batch statistics see the whole minibatch). Accuracy on
the test set is recorded after every epoch; a model's weights are kept at its last epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from gmn.data.fit import adam_update
from gmn.models.zoo_cnn import layer_strides, residual_layers
from gmn.zoo.specs import build_architecture

_ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh, "gelu": F.gelu, "silu": F.silu}
BN_MOMENTUM, BN_EPS = 0.1, 1e-5
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


@dataclass(frozen=True)
class Hyper:
    """One model's training hyper-parameters."""

    lr: float
    weight_decay: float
    init_scale: float
    dropout: float
    train_fraction: float
    epochs: int


def state_shapes(spec: dict) -> dict[str, tuple[torch.Size, torch.dtype]]:
    """``{state_dict key: (shape, dtype)}`` of one model of ``spec``."""
    return {k: (v.shape, v.dtype) for k, v in build_architecture(spec).state_dict().items()}


def init_stacked(spec: dict, init_scale: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
    """Fresh parameters of G models ``{key: Tensor[G, *shape]}``: weights and biases uniform in
    ±scale/√fan_in (PyTorch's default bound times ``init_scale`` [G]); BatchNorm γ=1, β=0."""
    g = init_scale.shape[0]
    out = {}
    for key, (shape, dtype) in state_shapes(spec).items():
        if key.startswith("norms."):
            fill = 1.0 if key.endswith(("weight", "running_var")) else 0.0
            out[key] = torch.full((g, *shape), fill, dtype=dtype)
            continue
        layer = key.rsplit(".", 1)[0]
        weight_shape = state_shapes(spec)[f"{layer}.weight"][0] if key.endswith("bias") else shape
        bound = init_scale.view(-1, *[1] * len(shape)) / math.sqrt(weight_shape[1:].numel())
        out[key] = (torch.rand((g, *shape), generator=generator, dtype=dtype) * 2 - 1) * bound
    return out


def grouped_forward(spec: dict, params: dict[str, Tensor], x: Tensor, training: bool = False,
                    keep: Tensor | None = None, generator: torch.Generator | None = None
                    ) -> Tensor:
    """Logits [B, G, classes] of G models of ``spec`` on images x [B, C, H, W].

    ``training`` uses batch statistics and updates the BatchNorm running statistics in place;
    ``keep`` [G] is each model's dropout keep probability (training only).
    """
    depth = len(spec["channels"])
    g = params["head.weight"].shape[0]
    act = _ACTIVATIONS[spec.get("activation", "relu")]
    kernel = spec.get("kernel", 3)
    strides = layer_strides(spec.get("stride", 1), depth)
    residual = residual_layers([spec.get("in_channels", 1), *spec["channels"]], strides,
                               spec.get("residual", False))
    h = x
    for i in range(depth):
        weight = params[f"convs.{i}.weight"]
        # the first layer reads the shared input: one ordinary convolution for all models
        out = F.conv2d(h, weight.reshape(-1, *weight.shape[2:]),
                       params[f"convs.{i}.bias"].reshape(-1), stride=strides[i],
                       padding=kernel // 2, groups=1 if i == 0 else g)
        if spec.get("batchnorm", False):
            mean, var = params[f"norms.{i}.running_mean"], params[f"norms.{i}.running_var"]
            out = F.batch_norm(out, mean.view(-1), var.view(-1),
                               params[f"norms.{i}.weight"].reshape(-1),
                               params[f"norms.{i}.bias"].reshape(-1), training, BN_MOMENTUM,
                               BN_EPS)
            if training:
                params[f"norms.{i}.num_batches_tracked"] += 1
        out = act(out)
        h = h + out if residual[i] else out
    pooled = h.mean(dim=(2, 3)).view(x.shape[0], g, -1)
    if training and keep is not None:
        mask = torch.rand(pooled.shape, generator=generator) < keep.view(1, g, 1)
        pooled = pooled * mask / keep.view(1, g, 1)
    return torch.einsum("bgc,gkc->bgk", pooled, params["head.weight"]) + params["head.bias"]


@torch.no_grad()
def grouped_accuracy(spec: dict, params: dict[str, Tensor], x: Tensor, y: Tensor,
                     chunk: int = 1024) -> Tensor:
    """Accuracy [G] of each model on (x [B, C, H, W], y [B])."""
    correct = 0
    for start in range(0, len(x), chunk):
        logits = grouped_forward(spec, params, x[start:start + chunk])
        correct = correct + (logits.argmax(-1) == y[start:start + chunk, None]).sum(0)
    return correct.double() / len(x)


def train_group(spec: dict, hypers: list[Hyper], train: tuple[Tensor, Tensor],
                test: tuple[Tensor, Tensor], seed: int, batch_size: int = 64
                ) -> tuple[dict[str, Tensor], Tensor]:
    """Train one model per entry of ``hypers`` (all of architecture ``spec``).

    Args:
        train, test: (images [N, C, H, W], labels [N]).
        seed: fixes initialisation, training subsets, minibatch order and dropout.

    Returns:
        (``{key: Tensor[G, *shape]}`` each model's state at its last epoch,
        test accuracy [G, max epochs], NaN after a model's last epoch).
    """
    generator = torch.Generator().manual_seed(seed)
    g = len(hypers)
    column = lambda name: torch.tensor([getattr(h, name) for h in hypers])  # noqa: E731
    lr, decay, keep = column("lr"), column("weight_decay"), 1 - column("dropout")
    epochs = column("epochs").long()
    params = init_stacked(spec, column("init_scale").float(), generator)
    x, y = train
    n = len(x)
    member = torch.zeros(n, g)
    for j, fraction in enumerate(column("train_fraction").tolist()):
        member[torch.randperm(n, generator=generator)[:max(1, round(fraction * n))], j] = 1
    trained = [k for k, v in params.items() if v.is_floating_point() and "running" not in k]
    for k in trained:
        params[k].requires_grad_(True)
    state = [(torch.zeros_like(params[k]), torch.zeros_like(params[k])) for k in trained]
    final = {k: v.detach().clone() for k, v in params.items()}
    history = torch.full((g, int(epochs.max())), float("nan"), dtype=torch.float64)
    step = 0
    for epoch in range(1, int(epochs.max()) + 1):
        for batch in torch.randperm(n, generator=generator).split(batch_size):
            weights = member[batch]  # [B, G]
            logits = grouped_forward(spec, params, x[batch], True, keep, generator)
            losses = F.cross_entropy(logits.permute(0, 2, 1), y[batch, None].expand(-1, g),
                                     reduction="none")
            loss = ((losses * weights).sum(0) / weights.sum(0).clamp(min=1)).sum()
            grads = torch.autograd.grad(loss, [params[k] for k in trained])
            step += 1
            with torch.no_grad():
                steps = torch.full((g,), step)
                for k, grad, (m, v) in zip(trained, grads, state):
                    adam_update(params[k], grad, m, v, steps, lr, ADAM_BETAS, ADAM_EPS, decay)
        accuracy = grouped_accuracy(spec, params, *test)
        running = epochs >= epoch
        history[running, epoch - 1] = accuracy[running]
        done = (epochs == epoch).nonzero().squeeze(1)
        for k, v in params.items():
            final[k][done] = v.detach()[done]
    return final, history
