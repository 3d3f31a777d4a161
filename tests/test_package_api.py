"""The package's public face: every part reachable from ``import gmn``, one error base."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import subprocess
import sys

import pytest

import gmn

PARTS = sorted(m.name for m in pkgutil.iter_modules(gmn.__path__))

# every public error class gmn defines -> the builtin it refines (``except ValueError`` etc.
# must keep catching it)
BUILTIN_BASE = {
    "gmn.data.cifar.CifarFileError": ValueError,
    "gmn.data.cifar.UnsafePickleError": pickle.UnpicklingError,
    "gmn.data.download.ChecksumError": RuntimeError,
    "gmn.zoo.stored_template.StoredTemplateError": ValueError,
    "gmn.data.inr_zoos.ZooFileError": ValueError,
    "gmn.data.inr_zoos.UnsafeFileError": pickle.UnpicklingError,
    "gmn.files.IntegrityError": RuntimeError,
    "gmn.files.CorruptFileError": RuntimeError,
    "gmn.files.FolderLockedError": BlockingIOError,
    "gmn.graph.errors.ConversionError": ValueError,
    "gmn.graph.errors.UnsupportedModuleError": ValueError,
    "gmn.graph.function_samples.UnsupportedArchitectureError": ValueError,
    "gmn.graph.parameter_graph.GraphFieldError": ValueError,
    "gmn.train.run_folder.CheckpointError": RuntimeError,
    "gmn.train.trainer.NonFiniteLossError": FloatingPointError,
}


def test_every_part_is_reachable_from_a_bare_import_gmn_without_loading_it_first():
    code = ("import sys, gmn\n"
            "assert not [m for m in sys.modules if m.startswith('gmn.')], 'parts loaded'\n"
            f"for name in {PARTS!r}:\n"
            "    assert getattr(gmn, name).__name__ == 'gmn.' + name\n"
            "gmn.graph.execute, gmn.nn.GMN, gmn.cka.cka_matrix, gmn.data.INRDataset\n"
            "assert set(dir(gmn)) >= set(" + repr(PARTS) + ")\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_missing_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'no_such_part'"):
        gmn.no_such_part  # noqa: B018
    assert not hasattr(gmn, "_private")


def public_error_classes() -> dict[str, type]:
    found = {}
    for info in pkgutil.walk_packages(gmn.__path__, "gmn."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException)
                    and obj.__module__ == module.__name__ and not name.startswith("_")):
                found[f"{obj.__module__}.{name}"] = obj
    return found


def test_every_public_error_derives_from_gmn_error_and_keeps_its_builtin_base():
    errors = public_error_classes()
    assert sorted(errors) == sorted(BUILTIN_BASE)  # a new error class: add it above
    for name, cls in errors.items():
        assert issubclass(cls, gmn.GMNError), name
        assert issubclass(cls, BUILTIN_BASE[name]), name
    with pytest.raises(ValueError):  # still caught where callers catch the builtin
        raise errors["gmn.graph.errors.ConversionError"]("x")
    with pytest.raises(gmn.GMNError):
        gmn.from_state_dict({"weight": __import__("torch").zeros(2, 2, 2, 2, 2)})
