"""``ModelZoo``: trained networks of mixed architectures with per-model metadata.

A zoo folder holds ``shard-*.safetensors`` files, each the stacked state_dicts
``{key: Tensor[n, *shape]}`` of n models of ONE architecture (its models' metadata is in the
safetensors header too), and ``manifest.json``:

* ``architectures``: ``{name: spec}``, each spec JSON data that
  :func:`gmn.data.architectures.build_architecture` turns into a module, or, for a zoo
  imported with ``like=``, ``{"family": "graph_template", "file", "sha256"}``: the
  architecture's graph template stored in the folder (:mod:`gmn.data.stored_template`), which
  needs no code to read; such a zoo gives graphs and state_dicts, not modules;
* ``models``: one record per model: ``architecture``, ``shard``, ``row``, ``hyper``
  (training hyper-parameters), ``accuracy`` (test accuracy after each epoch), ``test_accuracy``
  (at its last epoch), ``epochs``, ``finite`` (all weights finite);
* ``shards``: ``file``, ``sha256``, ``architecture``, ``count``; ``source``: how it was built;
* ``splits`` (optional): ``{"train" | "val" | "test": [model indices]}`` a public zoo ships.

The manifest is checked against the sha256 of its own content when read, every shard's
sha256 the first time it is read; a shard also carries the hash of its own content, which is
checked before a manifest is written to vouch for it. Splits are by model and seeded;
normalisation statistics are per architecture, from the train split.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from gmn.data.architectures import build_architecture
from gmn.data.normalize import Normalize, layer_statistics
from gmn.data.storage import MANIFEST, IntegrityError, ShardStore, sha256, write_json
from gmn.data.stored_template import STORED_FAMILY, read_template
from gmn.files import (
    read_json,
    read_safetensors,
    read_safetensors_metadata,
    verify_sha256,
    write_safetensors,
)
from gmn.graph.mixed_batches import batch_groups
from gmn.graph.template import GraphTemplate
from gmn.graph.weights import Weights

ZOO_FORMAT = "gmn.model-zoo"
ZOO_FORMAT_VERSION = 1


def read_zoo_manifest(folder) -> dict:
    """The manifest of a zoo folder, checked against the sha256 of its content and its format.

    Raises:
        FileNotFoundError: no manifest. CorruptFileError, IntegrityError: a damaged or
        edited manifest, naming it. ValueError: another format or a newer version.
    """
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{Path(folder).resolve()} has no {MANIFEST}: not a built zoo")
    manifest = read_json(path)
    if manifest.get("format") != ZOO_FORMAT:
        raise ValueError(f"{path} is not a {ZOO_FORMAT} manifest "
                         f"(format={manifest.get('format')!r})")
    if manifest.get("format_version", 0) > ZOO_FORMAT_VERSION:
        raise ValueError(f"{path} has format_version {manifest['format_version']}; this gmn "
                         f"reads up to {ZOO_FORMAT_VERSION}")
    return manifest


def write_zoo_shard(path, params: dict[str, Tensor], metadata: dict) -> None:
    """Write stacked ``params`` ``{key: Tensor[n, *shape]}`` with JSON ``metadata`` (which
    holds the models' records) atomically, with the sha256 of its content
    (:func:`gmn.files.write_safetensors`): whole or absent, and checkable on its own."""
    write_safetensors(path, params, {"gmn-zoo": json.dumps(metadata)})


def verify_zoo_shard(path) -> None:
    """Check a zoo shard against the hash of its content that it carries (no manifest
    needed); raises ``CorruptFileError``/``IntegrityError`` naming it."""
    read_safetensors(path)


def read_zoo_shard_metadata(path) -> dict:
    """The JSON metadata of a zoo shard, from its header only."""
    metadata = read_safetensors_metadata(path)
    if "gmn-zoo" not in metadata:
        raise IntegrityError(f"{path} is not a gmn zoo shard (no gmn-zoo metadata)")
    return json.loads(metadata["gmn-zoo"])


def write_zoo_manifest(folder, architectures: dict[str, dict], shards: list[dict],
                       source: dict, splits: dict | None = None) -> None:
    """The manifest of shards already in ``folder`` (``shards``: ``file``, ``architecture``);
    the models' records come from the shards' metadata, hashes from their bytes, after each
    shard is checked against the hash of its content that it carries."""
    folder = Path(folder)
    entries, models = [], []
    for shard in shards:
        path = folder / shard["file"]
        verify_zoo_shard(path)
        records = read_zoo_shard_metadata(path)["models"]
        entries.append({"file": shard["file"], "sha256": sha256(path),
                        "architecture": shard["architecture"], "count": len(records)})
        models += records
    models.sort(key=lambda m: m["id"])
    manifest = {"format": ZOO_FORMAT, "format_version": ZOO_FORMAT_VERSION, "source": source,
                "architectures": architectures, "shards": entries, "models": models}
    if splits is not None:
        manifest["splits"] = splits
    write_json(folder / MANIFEST, manifest)


class ModelZoo:
    """A built zoo folder (see the module docstring).

    Attributes: ``architectures`` ``{name: spec}``, ``models`` (list of records),
    ``manifest``. Model indices are positions in ``models``.
    """

    def __init__(self, folder, verify: bool = True):
        self.folder = Path(folder)
        self.manifest = read_zoo_manifest(folder)
        self.architectures: dict[str, dict] = self.manifest["architectures"]
        self.models: list[dict] = self.manifest["models"]
        self._stores: dict[str, ShardStore] = {}
        shards_of: dict[str, list[dict]] = {name: [] for name in self.architectures}
        shard_start: dict[str, int] = {}
        for shard in self.manifest["shards"]:
            arch = shard["architecture"]
            if arch not in shards_of:
                raise ValueError(f"{self.folder / MANIFEST}: shard {shard['file']} has unknown "
                                 f"architecture {arch!r}")
            start = sum(s["count"] for s in shards_of[arch])
            shards_of[arch].append(dict(shard, start=start, stop=start + shard["count"]))
            shard_start[shard["file"]] = start
        # each model's row among its architecture's models (across that architecture's shards)
        self.row_of = [shard_start[m["shard"]] + m["row"] for m in self.models]
        self._templates: dict[str, GraphTemplate] = {}
        self._verify = verify
        for arch, shards in shards_of.items():
            if shards:
                keys = (self.template(arch).key_order if self._stored(arch)
                        else list(self._module(arch).state_dict()))
                self._stores[arch] = ShardStore(self.folder, shards, keys, verify=verify)
        self.architecture_of = [m["architecture"] for m in self.models]
        self.splits = ({k: torch.tensor(v, dtype=torch.long)
                        for k, v in self.manifest["splits"].items()}
                       if "splits" in self.manifest else None)

    def __len__(self) -> int:
        return len(self.models)

    def _stored(self, arch: str) -> bool:
        return self.architectures[arch].get("family") == STORED_FAMILY

    def _module(self, arch: str) -> nn.Module:
        if self._stored(arch):
            raise ValueError(f"architecture {arch!r} of {self.folder} was imported with like=: "
                             "the zoo stores its graph template, not its module's code; load "
                             "zoo.state_dict(i) into your own module, or run "
                             "gmn.graph.execute(zoo.graphs([i])[0], inputs)")
        return build_architecture(self.architectures[arch])

    def targets(self, metric: str = "test_accuracy") -> Tensor:
        """[M] float64: ``metric`` of every model (a key of its record)."""
        missing = [i for i, m in enumerate(self.models) if metric not in m]
        if missing:
            raise KeyError(f"model {missing[0]} has no metric {metric!r}; it has "
                           f"{sorted(self.models[missing[0]])}")
        return torch.tensor([float(m[metric]) for m in self.models], dtype=torch.float64)

    def indices_of(self, arch: str) -> Tensor:
        """Model indices of architecture ``arch``."""
        return torch.tensor([i for i, a in enumerate(self.architecture_of) if a == arch],
                            dtype=torch.long)

    def grouped(self, indices) -> list[tuple[str, Tensor, Weights]]:
        """``[(architecture, model indices [n], their Weights), …]`` for ``indices``, one entry
        per architecture (in order of first appearance)."""
        indices = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        groups: dict[str, list[int]] = {}
        for i in indices.tolist():
            groups.setdefault(self.architecture_of[i], []).append(i)
        out = []
        for arch, members in groups.items():
            rows = torch.tensor([self.row_of[i] for i in members])
            stacked = self._stores[arch].gather(rows)
            out.append((arch, torch.tensor(members),
                        Weights.from_stacked(self.template(arch), stacked)))
        return out

    def state_dict(self, index: int) -> dict[str, Tensor]:
        """Model ``index``'s state_dict (loads into :meth:`module` with ``strict=True``)."""
        (_, _, weights), = self.grouped([index])
        return weights.state_dicts()[0]

    def module(self, index: int) -> nn.Module:
        """Model ``index`` as a module with its trained weights, in eval mode (a zoo imported
        with ``like=`` holds no module code: ``ValueError`` says what to use instead)."""
        model = self._module(self.architecture_of[index])
        model.load_state_dict(self.state_dict(index))
        return model.eval()

    def template(self, arch: str) -> GraphTemplate:
        """The (cached) :class:`GraphTemplate` of architecture ``arch``."""
        if arch not in self._templates:
            if self._stored(arch):
                spec = self.architectures[arch]
                path = self.folder / spec["file"]
                if self._verify:
                    verify_sha256(path, spec["sha256"], f"the manifest {self.folder / MANIFEST}")
                self._templates[arch] = read_template(path)
            else:
                self._templates[arch] = GraphTemplate.from_module(self._module(arch))
        return self._templates[arch]

    def graphs(self, indices, normalization: dict[str, Normalize] | None = None
               ) -> tuple[Batch, Tensor]:
        """(a ``Batch`` of the models' parameter graphs, the model index of each graph [n]).

        Graphs come grouped by architecture (one gather each); ``normalization`` maps an
        architecture to a :class:`Normalize` applied to its raw parameters first.
        """
        groups, order = [], []
        for arch, members, weights in self.grouped(indices):
            if normalization is not None:
                if arch not in normalization:
                    raise KeyError(f"no normalisation statistics for architecture {arch!r}")
                weights = normalization[arch](weights)
            groups.append(weights)
            order.append(members)
        return batch_groups(groups), torch.cat(order)

    def normalization(self, train: Tensor) -> dict[str, Normalize]:
        """Per architecture with models in ``train``: a :class:`Normalize` from the layer
        statistics (mean, std of each state_dict entry) of its train models."""
        return {arch: Normalize(layer_statistics(weights))
                for arch, _, weights in self.grouped(train)}


def split_models(zoo: ModelZoo, fractions=(0.7, 0.15, 0.15), seed: int = 0,
                 models: Tensor | None = None, held_out: list[str] = ()) -> dict[str, Tensor]:
    """A seeded split of ``models`` (default: all) into train/val/test by model; every model
    of a ``held_out`` architecture goes to test."""
    models = torch.arange(len(zoo)) if models is None else torch.as_tensor(models)
    unknown = sorted(set(held_out) - set(zoo.architectures))
    if unknown:
        raise KeyError(f"held-out architecture(s) {unknown} are not in the zoo")
    held = torch.tensor([zoo.architecture_of[i] in held_out for i in models.tolist()],
                        dtype=torch.bool)
    pool = models[~held]
    order = pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))]
    n_train = round(fractions[0] * len(pool))
    n_val = round(fractions[1] * len(pool))
    return {"train": order[:n_train].sort().values,
            "val": order[n_train:n_train + n_val].sort().values,
            "test": torch.cat([order[n_train + n_val:], models[held]]).sort().values}
