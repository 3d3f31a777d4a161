"""Every corpus network (tests/corpus.py) either converts to a graph that runs as the network,
also after permuting its hidden neurons, and gives its state_dict back bit for bit, or is
refused with an error naming where."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import gmn
from tests.corpus import CONVERTS, ENTRIES, LeNet, check

ROOT = Path(__file__).resolve().parents[1]


def assert_same_function(got: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal to 1e-5 relative to the output's size (float32 models)."""
    assert got.shape == expected.shape
    error = float((got - expected).norm())
    assert error <= 1e-5 * float(expected.norm()) + 1e-30, (error, float(expected.norm()))


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_corpus_network_runs_as_its_graph_or_is_refused_by_name(entry):
    """Converts: the graph runs as the network (also permuted) and gives its state_dict back
    bit for bit. Refused: the message names the module and the operation."""
    outcome = check(entry)
    if entry.expected == CONVERTS:
        assert outcome.kind == "correct", outcome.detail
    else:
        assert outcome.kind == "refused", outcome.detail
        for fragment in entry.expected[1:]:
            assert fragment in outcome.detail, (fragment, outcome.detail)


def test_view_to_a_fixed_size_runs_only_where_it_is_a_flatten():
    """``x.view(-1, 400)`` is recorded as a flatten; an input whose C·H·W is not 400 (here
    16·6·6, which the model would fold into 36 rows of 400) raises instead of mixing samples."""
    model = LeNet("view -1").eval()
    graph = gmn.from_state_dict(model)
    with pytest.raises(gmn.ConversionError, match=r"x.view\(-1, 400\).*gives 576"):
        gmn.graph.execute(graph, torch.randn(25, 1, 36, 36))


def test_docs_report_the_corpus_counts():
    converted = sum(e.expected == CONVERTS for e in ENTRIES)
    text = (ROOT / "docs" / "graph.md").read_text()
    found = re.search(r"corpus of (\d+) networks: (\d+)\s+convert.*?(\d+) are refused", text,
                      re.S)
    assert found, "docs/graph.md does not report the corpus counts"
    assert tuple(map(int, found.groups())) == (len(ENTRIES), converted,
                                                len(ENTRIES) - converted)
