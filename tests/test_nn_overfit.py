"""The first test of a learner: a weights-only GMN fits a small batch of INR-like graphs.

The graphs imitate INRs fitted from a shared initialisation (``docs/accuracy.md``): every
network is the same SIREN plus a deviation of 1 % of each weight's scale, and the labels are
random, so only those deviations can be memorised. The weights-only preset
(``gmn.nn.INR_WEIGHTS_ONLY``) must at least halve the training loss (measured without
dropout); the model of version 0.1 (a linear map of the globally standardised scalars,
additive messages, no canonical features) cannot.
"""

import torch
from torch import nn

from gmn.graph.template import GraphTemplate
from gmn.models.siren import Siren
from gmn.nn import GMN, INR_WEIGHTS_ONLY

NUM_GRAPHS, NUM_CLASSES, STEPS = 32, 4, 100


def shared_init_batch():
    torch.manual_seed(0)
    template = GraphTemplate.from_module(Siren(2, (8, 8), 1))
    base = template.flatten(Siren(2, (8, 8), 1).state_dict()).unsqueeze(0)
    noise = torch.randn(NUM_GRAPHS, base.shape[1]) * 0.01 * base.abs().mean()
    labels = torch.randint(0, NUM_CLASSES, (NUM_GRAPHS,))
    return template.batch(base + noise), labels


def loss_after_training(**options) -> tuple[float, float]:
    """Training loss (eval mode: no dropout) before and after STEPS full-batch AdamW steps."""
    graphs, labels = shared_init_batch()
    torch.manual_seed(1)
    model = GMN(out_dim=NUM_CLASSES, **options)
    model.fit_feature_statistics(graphs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def fitted_loss() -> float:
        with torch.no_grad():
            return nn.functional.cross_entropy(model.eval()(graphs), labels).item()

    initial = fitted_loss()
    for _ in range(STEPS):
        loss = nn.functional.cross_entropy(model.train()(graphs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return initial, fitted_loss()


def test_weights_only_gmn_overfits_a_small_batch_of_shared_init_networks():
    initial, final = loss_after_training(**INR_WEIGHTS_ONLY)
    assert final < 0.5 * initial, (initial, final)


def test_linear_scalar_encoding_cannot():
    """The bound above is not loose: the previous encoder stays near chance on this batch."""
    initial, final = loss_after_training(fourier_frequencies=0, edge_message="additive",
                                         rank_embedding=False, canonical_standardization=False,
                                         num_layers=2, readout=("output_mean", "node_mean"))
    assert final > 0.8 * initial, (initial, final)
