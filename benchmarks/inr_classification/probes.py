"""Probe a trained model on the test set: ``{layer: Tensor[n_test, d]}`` for CKA.

Image models and the weight MLP give each probed module's output flattened per sample.
A GMN layer gives, per input network, the mean node state of each node type
concatenated (``gmn.probe``'s ``node_type_mean``): one permutation-invariant vector per
network and layer.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset

from .config import BenchmarkConfig

PROBE_BATCH = 256
GRAPH_STATE = "node_type_mean"


def probe_model(
    model: nn.Module, layers: list[str], dataset, config: BenchmarkConfig
) -> dict[str, Tensor]:
    """States of ``layers`` for the first ``--probe-samples`` samples of ``dataset`` (all by
    default), in dataset order, on the CPU; keys are the module names."""
    import gmn

    n = len(dataset) if config.probe_samples is None else min(config.probe_samples, len(dataset))
    loader = DataLoader(Subset(dataset, range(n)), batch_size=PROBE_BATCH, shuffle=False)
    model.eval()
    device = next(model.parameters()).device
    with gmn.probe(model, layers=layers, to_cpu=True) as recorder:
        states = recorder.collect(loader, device=device)
    picked = {}
    for key, value in states.items():
        name, _, kind = key.partition("/")
        if not kind or kind == GRAPH_STATE:
            picked[name] = value.float()
    return {name: picked[name] for name in layers}


def probes_from_outputs(outputs: dict[str, list[dict[str, Tensor]]]) -> dict:
    """family → per seed ``{layer: Tensor[n_test, d]}`` from the runs' cached outputs (their
    ``probe/LAYER`` entries)."""
    return {
        family: [
            {k.removeprefix("probe/"): v for k, v in o.items() if k.startswith("probe/")}
            for o in per_seed
        ]
        for family, per_seed in outputs.items()
    }
