"""``ModelZoo``: trained networks of mixed architectures with per-model metadata.

A zoo folder is a store of :mod:`gmn.data.storage`, the format INR datasets use too
(:data:`MODEL_ZOO`): ``shard-*.safetensors`` files, each the stacked state_dicts
``{key: Tensor[n, *shape]}`` of n models of ONE architecture (its models' records in the
header's ``gmn-zoo`` metadata), and ``manifest.json``:

* ``architectures``: ``{name: spec}``, each spec JSON data that
  :func:`gmn.zoo.specs.build_architecture` turns into a module, or, for a zoo
  imported with ``like=``, ``{"family": "graph_template", "file", "sha256"}``: the
  architecture's graph template stored in the folder (:mod:`gmn.zoo.stored_template`), which
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

from pathlib import Path

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from gmn.data.normalize import Normalize, layer_statistics
from gmn.data.split import random_partition, split_counts
from gmn.data.storage import (
    MANIFEST,
    ShardStore,
    StoreFormat,
    read_manifest,
    read_shard_metadata,
    sha256,
    verify_shard,
)
from gmn.files import verify_sha256, write_json
from gmn.graph.mixed_batches import batch_groups
from gmn.graph.template import GraphTemplate
from gmn.graph.weights import Weights
from gmn.zoo.specs import build_architecture
from gmn.zoo.stored_template import STORED_FAMILY, read_template

MODEL_ZOO = StoreFormat("gmn.model-zoo", 1, "gmn-zoo", ("models",), "zoo")


def write_zoo_manifest(folder, architectures: dict[str, dict], shards: list[dict],
                       source: dict, splits: dict | None = None) -> None:
    """The manifest of shards already in ``folder`` (``shards``: ``file``, ``architecture``);
    the models' records come from the shards' metadata, hashes from their bytes, after each
    shard is checked against the hash of its content that it carries."""
    folder = Path(folder)
    entries, models = [], []
    for shard in shards:
        path = folder / shard["file"]
        verify_shard(path)
        records = read_shard_metadata(path, MODEL_ZOO)["models"]
        entries.append({"file": shard["file"], "sha256": sha256(path),
                        "architecture": shard["architecture"], "count": len(records)})
        models += records
    models.sort(key=lambda m: m["id"])
    manifest = {"format": MODEL_ZOO.name, "format_version": MODEL_ZOO.version, "source": source,
                "architectures": architectures, "shards": entries, "models": models}
    if splits is not None:
        manifest["splits"] = splits
    write_json(manifest, folder / MANIFEST, indent=1)


class ModelZoo:
    """A built zoo folder (see the module docstring).

    Attributes: ``architectures`` ``{name: spec}``, ``models`` (list of records),
    ``manifest``. Model indices are positions in ``models``.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.manifest = read_manifest(folder, MODEL_ZOO)
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
        for arch, shards in shards_of.items():
            if shards:
                keys = (self.template(arch).key_order if self._stored(arch)
                        else list(self._module(arch).state_dict()))
                self._stores[arch] = ShardStore(self.folder, shards, keys)
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
    """A seeded split of ``models`` (default: all) into train/val/test by model, cut as
    :func:`gmn.data.split.split_counts` and :func:`~gmn.data.split.random_partition` say;
    every model of a ``held_out`` architecture goes to test."""
    models = torch.arange(len(zoo)) if models is None else torch.as_tensor(models)
    unknown = sorted(set(held_out) - set(zoo.architectures))
    if unknown:
        raise KeyError(f"held-out architecture(s) {unknown} are not in the zoo")
    held = torch.tensor([zoo.architecture_of[i] in held_out for i in models.tolist()],
                        dtype=torch.bool)
    pool = models[~held]
    parts = random_partition(len(pool), split_counts(len(pool), fractions), seed)
    return {"train": pool[parts["train"]].sort().values,
            "val": pool[parts["val"]].sort().values,
            "test": torch.cat([pool[parts["test"]], models[held]]).sort().values}
