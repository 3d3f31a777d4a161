"""Extra node features computed from a network's parameters (see each module).

``neuron_activations``: probe features, every neuron's values at K fixed inputs.
"""

from gmn.features.neuron_activations import (
    SequentialSpec,
    UnsupportedArchitectureError,
    neuron_activations,
    probe_grid,
    random_probes,
    sequential_spec,
    with_neuron_activations,
)

__all__ = [
    "SequentialSpec",
    "UnsupportedArchitectureError",
    "neuron_activations",
    "probe_grid",
    "random_probes",
    "sequential_spec",
    "with_neuron_activations",
]
