"""The usage shown in docs/graph.md and examples/convert_resnet.py runs as written."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_docs_example_runs():
    text = (ROOT / "docs" / "graph.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "docs/graph.md has no python example"
    for block in blocks:
        exec(compile(block, "docs/graph.md", "exec"), {})


def test_convert_resnet_example_runs(capsys):
    runpy.run_path(str(ROOT / "examples" / "convert_resnet.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "inverse is exact: True" in out
    change = float(re.search(r"max output change: (\S+)", out).group(1))
    assert change < 1e-5


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
