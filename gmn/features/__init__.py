"""Extra node features computed from a network's parameters (see each module).

Owns features derived from parameters and a template's structure.
May import: gmn.graph.

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
