"""Convert a small ResNet to a parameter graph, check the exact inverse, batch a model zoo.

Run: ``python examples/convert_resnet.py``
"""

from __future__ import annotations

import torch
from torch import nn

import gmn
from gmn.graph.permutation import permute
from gmn.graph.vocab import EDGE_TYPES, NODE_TYPES
from gmn.graph.weights import Weights


class Block(nn.Module):
    """``relu(x + bn(conv(relu(bn(conv(x))))))``: the residual is written in ``forward``."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
        )

    def forward(self, x):
        return torch.relu(x + self.body(x))


class ResNet(nn.Module):
    def __init__(self, width: int = 16, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU())
        self.blocks = nn.Sequential(Block(width), Block(width))
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


def main() -> None:
    torch.manual_seed(0)
    model = ResNet().eval()

    graph = gmn.from_state_dict(model)
    print(
        f"{graph.num_nodes} nodes, {graph.num_edges} edges, edge features "
        f"{list(graph.edge_attr.shape)}"
    )
    for i, count in enumerate(torch.bincount(graph.node_type, minlength=len(NODE_TYPES))):
        if count:
            print(f"  node type {NODE_TYPES[i]:16s} {int(count)}")
    for i, count in enumerate(torch.bincount(graph.edge_type, minlength=len(EDGE_TYPES))):
        if count:
            print(f"  edge type {EDGE_TYPES[i]:16s} {int(count)}")

    restored = gmn.to_state_dict(graph)
    exact = all(torch.equal(restored[k], v) for k, v in model.state_dict().items())
    print("inverse is exact:", exact)

    # a zoo of 8 models of this architecture → one PyG Batch, no per-model Python work
    template = gmn.GraphTemplate.from_module(model)
    zoo = [ResNet().eval().state_dict() for _ in range(8)]
    batch = Weights.from_state_dicts(template, zoo).graphs(y=torch.arange(8))
    print(
        f"batch: {batch.num_graphs} graphs, x {list(batch.x.shape)}, "
        f"edge_attr {list(batch.edge_attr.shape)}"
    )

    # hidden-neuron permutations keep the function (the basis of GMN invariance)
    permuted = ResNet().eval()
    generator = torch.Generator().manual_seed(0)
    moved = permute(Weights.from_state_dicts(template, [model.state_dict()]), generator)
    permuted.load_state_dict(moved.state_dicts()[0])
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        change = (permuted(x) - model(x)).abs().max().item()
    print(f"permuted network, max output change: {change:.1e}")


if __name__ == "__main__":
    main()
