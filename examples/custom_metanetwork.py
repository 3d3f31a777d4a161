"""Build your own metanetwork from `gmn.nn` parts and train it on a tiny INR zoo.

The zoo: SIRENs fitted to scikit-learn's 8×8 images of the digits 0 and 1 (360 images, a few
seconds on a CPU), all from one shared initialisation, as in the INR benchmark's default.
The metanetwork: typed encoders that also read each weight and bias against the training
statistics of its canonical position (`gmn.nn.CanonicalStandardize`, fitted once on the
training INRs), two message-passing layers that aggregate with a sum *and* a max, and a
readout over the output neurons and edges; a different design from the ready-made
`gmn.nn.GMN`, made of the same parts. It reads the weights alone, never the image.

What it shows: a metanetwork of a few dozen lines that is invariant to hidden-neuron
permutations and tells the digits apart from the INRs' weights. On the seeded split below it
prints a test accuracy of 1.000 (55 INRs, chance 0.5; best validation epoch 12). The same
network with the canonical features replaced by zeros stays near chance (0.564): INRs
fitted from one initialisation differ from it, and from each other, by a few percent of a
layer's spread, which only a comparison against "the same" neuron of the other INRs
reveals (``docs/accuracy.md``).

Run: python examples/custom_metanetwork.py [--device cpu] [--out runs/custom-gmn]
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.utils.data import TensorDataset

from gmn.data.fit import fit_inrs
from gmn.data.images import load_digits
from gmn.data.normalize import Normalize, layer_statistics
from gmn.graph import vocab
from gmn.graph.template import GraphTemplate
from gmn.graph.weights import Weights
from gmn.models.siren import Siren, SirenLayout
from gmn.nn import (
    CanonicalStandardize,
    EdgeEncoder,
    GMNLayer,
    GraphState,
    NodeEncoder,
    Readout,
    graph_context,
)
from gmn.train import TrainConfig, Trainer


class TinyMetanetwork(nn.Module):
    """[B, P] SIREN parameters → [B, num_classes] logits, through the parameter graph.

    ``train_params`` [n, P]: the training INRs, whose canonical statistics it keeps.
    """

    def __init__(self, template: GraphTemplate, num_classes: int, train_params, dim: int = 32):
        super().__init__()
        self.template = template
        self.canonical = CanonicalStandardize(5, template.edge_dim)
        self.canonical.fit(template.batch(train_params))
        # the canonical features (5 per node) join x; each hidden neuron's slot (< 16, the
        # widest layer) is embedded
        self.node_encoder = NodeEncoder(
            5, dim, len(vocab.NODE_TYPES), len(vocab.ACTIVATIONS), max_layers=8,
            max_io_positions=16, rank_embedding=True, extra_dim=5,
        )
        self.edge_encoder = EdgeEncoder(template.edge_dim, dim, len(vocab.EDGE_TYPES),
                                        extra_dim=template.edge_dim)
        self.layers = nn.ModuleList(GMNLayer(dim=dim, aggregations=("sum", "max"))
                                    for _ in range(2))
        self.readout = Readout(dim=dim, poolings=("output_mean", "edge_mean"))
        self.head = nn.Linear(self.readout.out_dim, num_classes)

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        graphs = self.template.batch(params)  # one gather, no loop over the batch
        ctx = graph_context(graphs, 5, self.template.edge_dim, len(vocab.NODE_TYPES))
        slots = self.canonical.slots(graphs, ctx.batch)
        node_z, edge_z = self.canonical(graphs, slots)
        state = GraphState(node=self.node_encoder(graphs, node_z, slots),
                           edge=self.edge_encoder(graphs, edge_z))
        for layer in self.layers:
            state = layer(state, ctx)  # every block: forward(state, ctx) -> GraphState
        return self.head(self.readout(state, ctx))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="runs/custom-metanetwork")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()

    digits = load_digits()
    keep = (digits.labels < 2).nonzero().squeeze(1)
    images, labels = digits.images[keep], digits.labels[keep]
    layout = SirenLayout(hidden=(16, 16))
    fitted = fit_inrs(
        images,
        layout=layout,
        steps=100,
        lr=1e-3,
        seed=0,
        init="shared",
        device=args.device,
        progress=False,
    )
    template = GraphTemplate.from_module(Siren(**layout.to_dict()))
    n_train, n_val = int(0.7 * len(labels)), int(0.15 * len(labels))
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    parts = torch.split(order, [n_train, n_val, len(labels) - n_train - n_val])
    # standardise each layer's weights and biases with training-set statistics
    inrs = Weights.from_stacked(template, fitted.params)
    normalize = Normalize(layer_statistics(inrs[parts[0]]))
    params = normalize(inrs).params  # [N, P]
    print(f"fitted {len(params)} INRs, mean PSNR {fitted.psnr.mean():.1f} dB")

    train, val, test = (TensorDataset(params[p], labels[p]) for p in parts)
    config = TrainConfig(
        run_dir=args.out,
        seed=0,
        epochs=args.epochs,
        batch_size=32,
        lr=3e-3,
        monitor="val_accuracy",
        device=args.device,
        progress=False,
    )
    trainer = Trainer(lambda: TinyMetanetwork(template, 2, params[parts[0]]), train, val, test,
                      config=config)
    summary = trainer.fit()
    print(
        f"test accuracy of the custom metanetwork: {summary['test']['accuracy']:.3f} "
        f"(chance 0.5), best epoch {summary['best_epoch']}"
    )


if __name__ == "__main__":
    main()
