"""The GMN family: the one place that decides how the benchmark builds and trains a GMN.

A GMN reads a batch of flat INR parameter vectors [B, P]; :class:`ParamsToGraph` turns them
into a batch of parameter graphs with ``GraphTemplate`` (vectorised, no per-sample Python
work), so the GMN and the weight-space MLP share one dataset and one augmentation.

``--gmn-config`` overrides the defaults below: keys of :class:`gmn.nn.GMNConfig` configure
the model, keys of ``GMN_TRAIN_DEFAULTS`` its training.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

GMN_MODEL_DEFAULTS = {"hidden_dim": 32, "num_layers": 3}
GMN_TRAIN_DEFAULTS = {"lr": 2e-3, "weight_decay": 0.01, "batch_size": 64, "warmup_fraction": 0.05}


def split_gmn_config(overrides: dict) -> tuple[dict, dict]:
    """``--gmn-config`` → (GMN keyword options, training options), each over its defaults.

    Unknown model keys are rejected by ``GMNConfig.from_kwargs`` with the valid list.
    """
    train = {k: v for k, v in overrides.items() if k in GMN_TRAIN_DEFAULTS}
    model = {k: v for k, v in overrides.items() if k not in GMN_TRAIN_DEFAULTS}
    return {**GMN_MODEL_DEFAULTS, **model}, {**GMN_TRAIN_DEFAULTS, **train}


class ParamsToGraph(nn.Module):
    """[B, P] flat parameters of one architecture → a PyG ``Batch`` of B parameter graphs."""

    def __init__(self, template):
        super().__init__()
        self.template = template

    def forward(self, params: Tensor):
        return self.template.batch(params)


def build_gmn(template, num_classes: int, train_params: Tensor, model_options: dict) -> nn.Module:
    """``Sequential(graph=ParamsToGraph, gmn=GMN)`` with input features standardised by the
    statistics of (up to 512 of) the training parameter vectors ``train_params`` [N, P]."""
    from gmn.nn import GMN

    gmn = GMN(out_dim=num_classes, **model_options)
    with torch.no_grad():
        graphs = template.batch(train_params[:512])
        gmn.set_feature_statistics(
            graphs.x.mean(0), graphs.x.std(0), graphs.edge_attr.mean(0), graphs.edge_attr.std(0)
        )
    return nn.Sequential(OrderedDict(graph=ParamsToGraph(template), gmn=gmn))
