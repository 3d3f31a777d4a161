"""An installed wheel (not the checkout) runs both benchmarks, their console scripts and the
device check from any folder, and declares the ``hf`` extra."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {  # console script: the module it runs
    "gmn-inr-classification": "benchmarks.inr_classification",
    "gmn-inr-editing": "benchmarks.inr_editing",
    "gmn-generalization": "benchmarks.generalization",
    "gmn-cnn-zoo": "benchmarks.cnn_zoo",
    "gmn-check": "gmn.check",
}


def _run(*command, cwd: Path, env: dict | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-3000:])
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict]:
    """(scratch folder outside the checkout, environment that sees only the installed copy)."""
    scratch = tmp_path_factory.mktemp("wheel")
    source = scratch / "source"  # a copy: building writes build/ and *.egg-info beside it
    source.mkdir()
    for name in ("pyproject.toml", "setup.cfg", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("gmn", "benchmarks"):
        shutil.copytree(ROOT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run(*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w",
         str(scratch / "dist"), cwd=scratch)
    (wheel,) = (scratch / "dist").glob("gmn-*.whl")
    _run(*pip, "install", "--no-deps", "--target", str(scratch / "site"), str(wheel),
         cwd=scratch)
    env = {**os.environ, "PYTHONPATH": str(scratch / "site"), "OMP_NUM_THREADS": "1"}
    return scratch, env


@pytest.mark.slow
def test_the_wheel_holds_the_benchmarks_and_the_hf_extra(installed):
    scratch, env = installed
    where = _run(sys.executable, "-c",
                 "import benchmarks.generalization, gmn.check; "
                 "print(benchmarks.generalization.__file__); print(gmn.check.__file__)",
                 cwd=scratch, env=env).split()
    assert all(Path(path).is_relative_to(scratch / "site") for path in where), where
    (metadata,) = (scratch / "site").glob("gmn-*.dist-info/METADATA")
    text = metadata.read_text()
    assert "Provides-Extra: hf" in text
    assert 'Requires-Dist: transformers>=5; extra == "hf"' in text


@pytest.mark.slow
@pytest.mark.parametrize("script", list(COMMANDS))
def test_each_command_runs_from_outside_the_checkout(installed, script):
    scratch, env = installed
    module = COMMANDS[script]
    as_module = _run(sys.executable, "-m", module, "--help", cwd=scratch, env=env)
    as_script = _run(str(scratch / "site" / "bin" / script), "--help", cwd=scratch, env=env)
    assert as_module.startswith("usage: ") and "--help" in as_module
    assert as_script == as_module  # the script runs exactly what python -m runs
