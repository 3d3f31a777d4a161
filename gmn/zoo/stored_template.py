"""A :class:`~gmn.graph.template.GraphTemplate` stored as data, for architectures no factory
can rebuild (a zoo imported with ``like=`` a module of the user's own class).

A template is tensors and plain values (lists, dicts, tuples, sizes, dtypes, slices, the
``Axis`` records of its permutation axes, and the shape operations its executor replays:
flatten, squeeze, transposes, poolings, means). They are written as one safetensors file: the
tensors as entries, everything else as tagged JSON in its metadata. Reading it runs no code:
only the tags below are decoded, functions only from that fixed list, and the attribute names
must be those of this gmn's templates (a file written by a gmn whose templates hold other
attributes is refused: import the checkpoints again). Private dictionaries are caches and are
stored empty.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import operator
from pathlib import Path

import torch
from safetensors.torch import load, save
from torch import Tensor, nn

from gmn import GMNError
from gmn.files import write_bytes
from gmn.graph import shapes
from gmn.graph.builder import Axis
from gmn.graph.template import GraphTemplate

FORMAT = "gmn.graph-template"
STORED_FAMILY = "graph_template"  # a zoo architecture spec {"family", "file", "sha256"}
_RECORDS = {"Axis": Axis}  # the dataclasses a template holds
# the shape operations a traced template replays (``program`` reads): stored by name, and
# only these names are read back
_FUNCTIONS = {f"{getattr(f, '__module__', None)}.{f.__name__}": f for f in (
    *shapes.LAYOUT, *(f for f in shapes.TRANSPOSES if callable(f)), *shapes.LOCAL_POOL_FUNCTIONS,
    *shapes.ADAPTIVE_POOL_FUNCTIONS, torch.amax, torch.mean, operator.getitem)}
_FUNCTION_NAMES = {f: name for name, f in _FUNCTIONS.items()}


class StoredTemplateError(GMNError, ValueError):
    """A stored template that cannot be read (damaged, or written by another gmn)."""


def template_bytes(template: GraphTemplate) -> bytes:
    """``template`` as the bytes of a safetensors file (equal templates, equal bytes)."""
    tensors: dict[str, Tensor] = {}
    caches = GraphTemplate.fresh_caches()
    attributes = {name: _encode(value, tensors, name)
                  for name, value in sorted(vars(template).items()) if name not in caches}
    header = json.dumps({"format": FORMAT, "attributes": attributes}, sort_keys=True)
    return save(tensors, {"gmn-template": header})


def write_template(template: GraphTemplate, path) -> str:
    """Write ``template`` to ``path`` atomically; returns the file's sha256."""
    data = template_bytes(template)
    restored = template_from_bytes(data, str(path))
    if template_bytes(restored) != data:  # every attribute must come back as it was
        raise StoredTemplateError(f"{path}: the template does not survive storage")
    write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def read_template(path) -> GraphTemplate:
    """The template stored in ``path`` (see the module docstring)."""
    return template_from_bytes(Path(path).read_bytes(), str(path))


def template_from_bytes(data: bytes, name: str = "template") -> GraphTemplate:
    try:
        tensors = load(data)
        header = json.loads(_metadata(data)["gmn-template"])
    except Exception as error:  # noqa: BLE001 - safetensors and json raise their own kinds
        raise StoredTemplateError(f"{name} is not a readable stored graph template "
                                  f"({type(error).__name__}: {error})") from error
    if header.get("format") != FORMAT:
        raise StoredTemplateError(f"{name} is not a {FORMAT} file")
    attributes = header["attributes"]
    caches = GraphTemplate.fresh_caches()
    expected = set(vars(_reference())) - set(caches)
    if set(attributes) != expected:
        raise StoredTemplateError(
            f"{name} was written by a gmn whose graph templates hold other attributes "
            f"(missing {sorted(expected - set(attributes))}, extra "
            f"{sorted(set(attributes) - expected)}); import the checkpoints again")
    template = GraphTemplate.__new__(GraphTemplate)
    template.__dict__.update({k: _decode(v, tensors, name) for k, v in attributes.items()})
    template.__dict__.update(caches)
    return template


def _metadata(data: bytes) -> dict:
    """The ``__metadata__`` of a safetensors file, from its header."""
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + length]).get("__metadata__", {})


_REFERENCE: list[GraphTemplate] = []


def _reference() -> GraphTemplate:
    """A template of this gmn (its attribute names are what a stored one must hold)."""
    if not _REFERENCE:
        _REFERENCE.append(GraphTemplate.from_module(nn.Linear(1, 1)))
    return _REFERENCE[0]


def _encode(value, tensors: dict, where: str):
    if isinstance(value, Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = value.detach().cpu().contiguous().clone()
        return {"$tensor": name}
    if isinstance(value, torch.dtype):
        return {"$dtype": str(value).removeprefix("torch.")}
    if isinstance(value, torch.Size):
        return {"$size": list(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if callable(value) and not isinstance(value, type) and value in _FUNCTION_NAMES:
        return {"$function": _FUNCTION_NAMES[value]}
    if isinstance(value, slice):
        return {"$slice": [value.start, value.stop, value.step]}
    if value is Ellipsis:
        return {"$ellipsis": None}
    if isinstance(value, list):
        return [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        tag = "$tuple" if isinstance(value, tuple) else "$set"
        return {tag: [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(items)]}
    if isinstance(value, dict):
        return {"$dict": [[_encode(k, tensors, f"{where} key"),
                           _encode(v, tensors, f"{where}[{k!r}]")] for k, v in value.items()]}
    if dataclasses.is_dataclass(value) and _RECORDS.get(type(value).__name__) is type(value):
        return {"$record": type(value).__name__,
                "fields": {f.name: _encode(getattr(value, f.name), tensors, where)
                           for f in dataclasses.fields(value)}}
    raise StoredTemplateError(f"cannot store the template's {where}: a "
                              f"{type(value).__name__}")


def _decode(value, tensors: dict, name: str):
    if isinstance(value, list):
        return [_decode(v, tensors, name) for v in value]
    if not isinstance(value, dict):
        return value
    if "$tensor" in value:
        return tensors[value["$tensor"]]
    if "$dtype" in value:
        dtype = getattr(torch, value["$dtype"], None)
        if not isinstance(dtype, torch.dtype):
            raise StoredTemplateError(f"{name}: unknown dtype {value['$dtype']!r}")
        return dtype
    if "$size" in value:
        return torch.Size(value["$size"])
    if "$tuple" in value:
        return tuple(_decode(v, tensors, name) for v in value["$tuple"])
    if "$set" in value:
        return {_decode(v, tensors, name) for v in value["$set"]}
    if "$dict" in value:
        return {_decode(k, tensors, name): _decode(v, tensors, name) for k, v in value["$dict"]}
    if "$function" in value:
        if value["$function"] not in _FUNCTIONS:
            raise StoredTemplateError(f"{name}: unknown function {value['$function']!r}")
        return _FUNCTIONS[value["$function"]]
    if "$slice" in value:
        return slice(*value["$slice"])
    if "$ellipsis" in value:
        return Ellipsis
    if value.get("$record") in _RECORDS:
        fields = {k: _decode(v, tensors, name) for k, v in value["fields"].items()}
        return _RECORDS[value["$record"]](**fields)
    raise StoredTemplateError(f"{name}: unknown entry {value!r}")
