"""The examples in docs/nn.md run and give the shapes the page states."""

from __future__ import annotations

import re
from pathlib import Path

from gmn.graph import vocab

DOC = Path(__file__).resolve().parents[1] / "docs" / "nn.md"


def test_docs_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    quick_start, custom = blocks[0], blocks[1]
    namespace: dict = {}
    exec(quick_start, namespace)
    types = len(vocab.NODE_TYPES)
    assert namespace["hidden"]["layers.0/node_type_mean"].shape == (8, types * 64)
    assert "layers.1/node_mean" not in namespace["hidden"]  # 1 layer by default
    # output_mean 64 + node_mean 64 + edge_mean 32 (edges are hidden_dim // 2 wide)
    # + edge_bilinear 4 * 64
    assert namespace["hidden"]["readout"].shape == (8, 64 + 64 + 32 + 256)
    exec(custom, namespace)
    assert namespace["MyGMN"]()(namespace["batch"]).shape == (8, 10)
