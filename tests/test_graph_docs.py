"""gmn.graph exports what its docstring names (docs/graph.md's code blocks run in
tests/test_docs_code_blocks.py, examples/convert_resnet.py in tests/test_examples.py)."""

from __future__ import annotations

import re


def test_gmn_graph_exports_the_names_its_docstring_documents():
    import importlib

    import gmn.graph

    packages = {"gmn", "graph", "nn", "data", "train", "models", "features", "cka", "probing"}
    documented = set(re.findall(r"``(\w+)[`(]", gmn.graph.__doc__)) - packages
    modules = re.findall(r":mod:`~gmn\.graph\.(\w+)`", gmn.graph.__doc__)
    for name in modules:
        importlib.import_module(f"gmn.graph.{name}")
    exported = set(gmn.graph.__all__)
    assert documented == exported, documented ^ exported
    for name in exported:
        assert getattr(gmn.graph, name) is getattr(
            importlib.import_module(gmn.graph._LAZY[name]), name)
