"""Console scripts of an installed gmn (``[project.scripts]`` in pyproject.toml): each runs
exactly what ``python -m <its module>`` runs, so both spellings behave the same.

    gmn-inr-classification   python -m benchmarks.inr_classification
    gmn-inr-editing          python -m benchmarks.inr_editing
    gmn-generalization       python -m benchmarks.generalization
    gmn-cnn-zoo              python -m benchmarks.cnn_zoo
"""

from __future__ import annotations

import runpy


def _run(module: str) -> None:
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def inr_classification() -> None:
    _run("benchmarks.inr_classification")


def inr_editing() -> None:
    _run("benchmarks.inr_editing")


def generalization() -> None:
    _run("benchmarks.generalization")


def cnn_zoo() -> None:
    _run("benchmarks.cnn_zoo")
