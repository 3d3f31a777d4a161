"""Every ```python block of README.md and docs/*.md runs, each as its own test.

The blocks of one page run in order in one namespace (like the cells of a notebook: a later
block may use what an earlier one defined), with a fresh temporary directory as the working
directory and ``torch.manual_seed(0)`` set before the page's first block. A block that only
illustrates (a signature, code that needs data that is not here) is marked by the line
``<!-- illustration -->``, or ``<!-- illustration: why -->``, just before its fence; it is
reported as skipped, never run. Any other block that raises fails its test.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ILLUSTRATION = re.compile(r"^<!-- illustration(: .+)? -->$")
_FENCE = re.compile(r"^(\s*)```python\s*$")


@dataclass(frozen=True)
class CodeBlock:
    page: Path
    index: int  # 1-based, over the page's python blocks
    line: int  # 1-based line of the opening fence
    code: str
    illustration: bool

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}-block{self.index}-line{self.line}"


def code_blocks(page: Path) -> list[CodeBlock]:
    """The ```python blocks of ``page`` (indented ones dedented), in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, start = fence.group(1), i
        end = next((j for j in range(i + 1, len(lines))
                    if lines[j].strip() == "```" and lines[j].startswith(indent)), None)
        if end is None:
            raise ValueError(f"{page}:{start + 1}: ```python block is never closed")
        body = [line[len(indent):] if line.startswith(indent) else line.lstrip()
                for line in lines[start + 1:end]]
        before = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()),
                      "")
        blocks.append(CodeBlock(page, len(blocks) + 1, start + 1, "\n".join(body) + "\n",
                                bool(ILLUSTRATION.match(before))))
        i = end + 1
    return blocks


def run_block(block: CodeBlock, namespace: dict, workdir: Path) -> None:
    """Execute ``block`` in ``namespace`` with ``workdir`` as the working directory."""
    previous = os.getcwd()
    os.chdir(workdir)
    try:
        exec(compile(block.code, f"{block.page}:{block.line}", "exec"), namespace)
    finally:
        os.chdir(previous)


class _Page:
    """One page's shared namespace and how far it has run."""

    def __init__(self, workdir: Path):
        self.workdir, self.namespace, self.done = workdir, {"__name__": "__docs__"}, 0
        torch.manual_seed(0)


_pages: dict[Path, _Page] = {}
BLOCKS = [block for page in PAGES for block in code_blocks(page)]


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_code_block_runs(block: CodeBlock, tmp_path_factory):
    if block.illustration:
        pytest.skip("marked as an illustration")
    page = _pages.get(block.page)
    if page is None or page.done >= block.index:  # first block of the page, or a rerun
        page = _pages[block.page] = _Page(tmp_path_factory.mktemp(block.page.stem))
    for earlier in code_blocks(block.page)[page.done:block.index - 1]:
        if not earlier.illustration:
            try:
                run_block(earlier, page.namespace, page.workdir)
            except Exception as error:
                pytest.fail(f"an earlier block of the page, {earlier.id}, raised {error!r}")
    page.done = block.index  # a failing block is not rerun for the blocks after it
    run_block(block, page.namespace, page.workdir)


def test_every_page_with_code_is_collected():
    pages = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "docs/nn.md", "docs/graph.md", "docs/cka.md"} <= pages
    assert sum(not b.illustration for b in BLOCKS) >= 10


def test_an_unmarked_block_that_raises_fails_and_a_marked_one_is_skipped(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n```python\nvalue = 1\n```\n\n"
        "<!-- illustration: not python -->\n```python\nthis is not python\n```\n\n"
        "- item:\n\n  ```python\n  assert value == 2, 'wrong value'\n  ```\n",
        encoding="utf-8",
    )
    first, illustration, indented = code_blocks(page)
    assert (first.illustration, illustration.illustration, indented.illustration) == (
        False, True, False)
    assert (first.line, illustration.line, indented.line) == (3, 8, 14)
    namespace: dict = {}
    run_block(first, namespace, tmp_path)
    with pytest.raises(AssertionError, match="wrong value"):
        run_block(indented, namespace, tmp_path)
