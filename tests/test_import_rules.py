"""Which parts of gmn may import which, as each part's docstring states it.

Every package (``gmn/NAME/__init__.py``) and top-level module (``gmn/NAME.py``) says on one
line of its docstring ``May import: gmn.A, gmn.B.`` (or ``May import: nothing of gmn.``); a
documented exception reads ``Exception: gmn.NAME.MODULE may import: gmn.C.``. These tests
parse the imports of every module (top-level ones and those inside functions, absolute and
relative) and check them against those lines; the façade ``gmn/__init__.py`` (lazy names
only) is exempt.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

GMN = Path(__file__).resolve().parents[1] / "gmn"
RULE = re.compile(r"^May import: (.*)\.$", re.M)
EXCEPTION = re.compile(r"^Exception: gmn\.([\w.]+) may import: (.*)\.$", re.M)


def units() -> dict[str, Path]:
    """{unit name: the file whose docstring states its rules}."""
    found = {p.stem: p for p in GMN.glob("*.py") if p.name != "__init__.py"}
    found.update({p.parent.name: p for p in GMN.glob("*/__init__.py")})
    return dict(sorted(found.items()))


def parse_targets(text: str) -> set[str]:
    return set() if text == "nothing of gmn" else set(re.findall(r"gmn\.(\w+)", text))


def rules(unit: str) -> tuple[set[str], dict[str, set[str]]]:
    """(units ``unit`` may import, {module: extra units it may import})."""
    doc = ast.get_docstring(ast.parse(units()[unit].read_text())) or ""
    stated = RULE.findall(doc)
    assert len(stated) == 1, f"{units()[unit]}: state one 'May import: ...' line"
    exceptions = {f"gmn.{module}": parse_targets(text) for module, text in EXCEPTION.findall(doc)}
    return parse_targets(stated[0]), exceptions


def module_name(path: Path, root: Path = GMN) -> str:
    parts = ["gmn", *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_units(path: Path, root: Path = GMN) -> list[tuple[int, str]]:
    """(line, unit) of every import of another part of gmn in the file at ``path``."""
    name = module_name(path, root)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    names = set(units()) if root == GMN else {p.stem for p in root.iterdir()}
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules = [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            modules = [(module, tuple(alias.name for alias in node.names))]
        else:
            continue
        for module, imported in modules:
            parts = module.split(".")
            if parts[0] != "gmn":
                continue
            if len(parts) > 1:
                found.append((node.lineno, parts[1]))
            else:  # ``from gmn import files``: the names that are parts of gmn
                found.extend((node.lineno, n) for n in imported if n in names)
    unit = name.split(".")[1] if "." in name else None
    return [(line, target) for line, target in found if target != unit]


def violations(unit: str) -> list[str]:
    allowed, exceptions = rules(unit)
    path = units()[unit]
    files = [path] if path.name != "__init__.py" else sorted(path.parent.rglob("*.py"))
    wrong = []
    for file in files:
        extra = exceptions.get(module_name(file), set())
        for line, target in imported_units(file):
            if target not in allowed | extra:
                wrong.append(f"{file.relative_to(GMN.parent)}:{line} imports gmn.{target}")
    return wrong


@pytest.mark.parametrize("unit", list(units()))
def test_imports_follow_the_stated_rules(unit):
    assert violations(unit) == []


@pytest.mark.parametrize("unit", list(units()))
def test_rules_name_existing_parts_and_modules(unit):
    allowed, exceptions = rules(unit)
    assert allowed <= set(units()), allowed - set(units())
    for module, extra in exceptions.items():
        assert module.startswith(f"gmn.{unit}."), module
        path = GMN.parent / (module.replace(".", "/") + ".py")
        assert path.is_file(), f"exception for a missing module {module}"
        assert extra <= set(units()) and not extra <= allowed, (module, extra)


def test_the_layering_the_readme_promises():
    """Rules that may not be loosened by editing a docstring."""
    assert not rules("graph")[0] & {"nn", "data", "train", "models", "features", "cka",
                                    "probing", "testing"}
    assert rules("cka")[0] <= {"large_tensors"}  # pure tensor math (large_tensors: a foundation)
    assert set(rules("cka")[1]) == {"gmn.cka.comparison"}
    assert rules("models")[0] == set()
    assert "zoo" not in rules("data")[0]  # the CNN zoo builds on the INR data's store
    assert not rules("train")[0] & {"graph", "nn", "data", "models", "features", "cka"}
    for foundation in ("files", "seeding", "scatter", "batches", "large_tensors"):
        assert rules(foundation)[0] == set(), foundation


def test_the_checker_sees_relative_lazy_and_from_gmn_imports(tmp_path):
    """Known answer on a made-up package: every import form is attributed to its part."""
    root = tmp_path / "gmn"
    (root / "graph").mkdir(parents=True)
    (root / "files.py").write_text("")
    (root / "nn").mkdir()
    source = (
        "import torch\n"
        "from . import vocab\n"  # inside graph: not another part
        "from ..nn import layer\n"
        "from gmn import files, __version__\n"
        "def f():\n"
        "    import gmn.data.fit\n"
        "    from gmn.graph.template import GraphTemplate\n"
    )
    (root / "graph" / "convert.py").write_text(source)
    found = imported_units(root / "graph" / "convert.py", root)
    assert found == [(3, "nn"), (4, "files"), (6, "data")]


CKA_CONCEPTS = ["estimators", "statistics", "matrix", "measures", "streaming", "approximate",
                "comparison", "plot"]


def sibling_imports(path: Path, root: Path = GMN) -> set[str]:
    """The modules of its own package that the file at ``path`` imports (any import form)."""
    package = module_name(path, root).rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules = [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[: len(parts) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            modules = [(module, tuple(alias.name for alias in node.names))]
        else:
            continue
        for module, names in modules:
            if module == package:  # ``from . import matrix``
                found.update(names)
            elif module.startswith(package + "."):
                found.add(module[len(package) + 1:].split(".")[0])
    return found


def check_layout(name: str, concepts: list[str]) -> None:
    """Package ``gmn.<name>`` is the modules ``concepts``, listed in that order in its docstring
    (``- ``module``: …`` lines), each importing only those above it (no circle)."""
    package = GMN / name
    assert sorted(p.stem for p in package.glob("*.py") if p.stem != "__init__") == sorted(concepts)
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text()))
    assert re.findall(r"^- ``(\w+)``", doc, re.M) == concepts
    for i, concept in enumerate(concepts):
        above = set(concepts[:i])
        assert sibling_imports(package / f"{concept}.py") <= above, (concept, above)


def test_cka_is_one_module_per_concept_each_importing_only_those_above_it():
    """gmn.cka's layout (its docstring lists it): the core estimators first, then statistics,
    the one matrix type, the other measures, streaming, approximations, the comparison of
    two models and the plot. An import that runs back up (a circle) fails here."""
    check_layout("cka", CKA_CONCEPTS)


ZOO_CONCEPTS = ["specs", "stored_template", "store", "grouped_cnn", "build", "readers"]


def test_zoo_is_one_module_per_concept_each_importing_only_those_above_it():
    """gmn.zoo's layout (its docstring lists it): architecture specs, stored templates, the zoo
    folder, the grouped trainer, the builder and the readers."""
    check_layout("zoo", ZOO_CONCEPTS)


def test_sibling_imports_sees_every_form(tmp_path):
    root = tmp_path / "gmn" / "pkg"
    root.mkdir(parents=True)
    (root / "b.py").write_text(
        "from .a import x\nfrom . import c\nimport gmn.pkg.d\nfrom gmn.pkg.e import y\n"
        "def f():\n    from .g import z\nfrom gmn.other import w\n"
    )
    assert sibling_imports(root / "b.py", tmp_path / "gmn") == {"a", "c", "d", "e", "g"}


GRAPH_MODULES = ["activations", "arithmetic", "builder", "convert", "converters", "errors",
                 "executor", "function_samples", "infer", "inverse", "mixed_batches",
                 "operations", "param_tensors", "param_uses", "parameter_graph", "permutation",
                 "registry", "shapes", "signs", "substitutes", "template", "trace", "vocab",
                 "weight_statistics", "weights"]


def test_graph_is_one_module_per_concept_and_the_tracer_reads_one_operation_table():
    """gmn.graph's layout: names that say what a module holds (``function_samples``, not
    ``neuron_activations`` beside ``activations``; one ``substitutes`` for every forward
    torch.fx cannot trace). The tracer (``trace``) dispatches through the handler tables of
    ``operations``, which never reach back into the tracer."""
    package = GMN / "graph"
    assert sorted(p.stem for p in package.glob("*.py") if p.stem != "__init__") == GRAPH_MODULES
    assert "operations" in sibling_imports(package / "trace.py")
    assert "trace" not in sibling_imports(package / "operations.py")
    lazy = re.findall(r'"gmn\.graph\.(\w+)"', (package / "__init__.py").read_text())
    assert set(lazy) <= set(GRAPH_MODULES)  # every name gmn.graph exports has its module


def test_every_package_and_top_level_module_is_a_part_with_rules():
    """The parts of gmn, each stating its import rules (the façade reaches each one lazily)."""
    assert set(units()) == {"batches", "check", "cka", "data", "files", "graph",
                            "large_tensors", "models", "nn", "probing", "scatter", "seeding",
                            "testing", "train", "zoo"}
