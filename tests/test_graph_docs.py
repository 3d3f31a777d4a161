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
