"""Activation modules and functions recognised in a network's dataflow, and their argument."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gmn.models.siren import Sine


class UnknownActivation(nn.Identity):
    """Stands for an activation that a state_dict does not reveal (layouts inferred from keys).

    It is recorded as ``"unknown"`` in the graph; it computes the identity.
    """


# module type -> (vocabulary name, function of the module giving the activation's argument)
ACTIVATION_MODULES = {
    nn.ReLU: ("relu", lambda m: 0.0),
    nn.LeakyReLU: ("leaky_relu", lambda m: m.negative_slope),
    nn.GELU: ("gelu", lambda m: 0.0),
    nn.Tanh: ("tanh", lambda m: 0.0),
    nn.Sigmoid: ("sigmoid", lambda m: 0.0),
    nn.SiLU: ("silu", lambda m: 0.0),
    nn.ELU: ("elu", lambda m: m.alpha),
    nn.Softplus: ("softplus", lambda m: m.beta),
    Sine: ("sine", lambda m: m.w0),
    UnknownActivation: ("unknown", lambda m: 0.0),
}

# function or Tensor method name -> (vocabulary name, keyword of its argument, default argument)
ACTIVATION_FUNCTIONS = {
    F.relu: ("relu", None, 0.0),
    torch.relu: ("relu", None, 0.0),
    F.leaky_relu: ("leaky_relu", "negative_slope", 0.01),
    F.gelu: ("gelu", None, 0.0),
    torch.tanh: ("tanh", None, 0.0),
    F.tanh: ("tanh", None, 0.0),
    torch.sigmoid: ("sigmoid", None, 0.0),
    F.sigmoid: ("sigmoid", None, 0.0),
    F.silu: ("silu", None, 0.0),
    F.elu: ("elu", "alpha", 1.0),
    F.softplus: ("softplus", "beta", 1.0),
    torch.sin: ("sine", None, 1.0),
    "relu": ("relu", None, 0.0),
    "relu_": ("relu", None, 0.0),
    "tanh": ("tanh", None, 0.0),
    "sigmoid": ("sigmoid", None, 0.0),
    "sin": ("sine", None, 1.0),
}
