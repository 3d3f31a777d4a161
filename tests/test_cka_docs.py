"""The usage example in docs/cka.md runs as written."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "cka.md"


def test_usage_example_runs(tmp_path, monkeypatch):
    example = re.search(r"## Usage\n\n```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(example, str(DOC), "exec"), {})
    assert (tmp_path / "cka.png").stat().st_size > 10_000
