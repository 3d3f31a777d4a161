"""Build an INR dataset folder from images: resumable, and split across ``torchrun`` ranks.

The INRs are ordered image-major (INR ``n`` fits image ``n // views``, view ``n % views``) and
cut into shards of ``shard_size``. Shard ``k`` is fitted by rank ``k % world_size``; a shard
already on disk (complete, since shards are renamed into place) is kept when the manifest's
hash or, with no manifest, the hash it carries of its own content vouches for it, so a killed
build resumes after its last complete shard and a damaged one is refitted. An INR's
parameters depend only on (seed, image id, view), so a resumed or distributed build is
bit-identical to an uninterrupted one on the CPU. After a barrier, rank 0 writes the manifest
(unless an intact one already says the same): the split, the normalisation statistics of the
train split, labels, PSNRs, shard hashes and the fitting recipe.

The build is decided by the images' content (sha256), the recipe, views, seed and, once a
manifest exists, its split; where the images came from (``source``, e.g. a path) is recorded
but never compared, so moving the data folder keeps the INRs.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch
import torch.distributed as dist

import gmn
from gmn.data.fit import FitRecipe, fit_selected
from gmn.data.images import ImageSet
from gmn.data.normalize import layer_statistics
from gmn.data.split import SPLITS, inrs_of_images, split_images
from gmn.data.storage import (
    INR_DATASET,
    MANIFEST,
    ShardStore,
    check_build_record,
    read_manifest,
    read_shard_metadata,
    sha256,
    shard_name,
    verify_shard,
    write_shard,
)
from gmn.files import (
    IntegrityError,
    make_folder,
    remove_stale_temporaries,
    verify_sha256,
    write_json,
)
from gmn.graph.template import GraphTemplate
from gmn.graph.weights import Weights

PROVENANCE = ("source", "gmn_version")  # recorded, never compared: the content decides


def images_digest(images: ImageSet) -> str:
    """sha256 of the images and labels: a resumed build must see the same data."""
    digest = hashlib.sha256(images.images.contiguous().numpy().tobytes())
    digest.update(images.labels.numpy().tobytes())
    return digest.hexdigest()


def build_dataset(
    images: ImageSet,
    folder,
    *,
    recipe: FitRecipe | None = None,
    views: int = 1,
    seed: int = 0,
    split=(0.7, 0.1, 0.2),
    shard_size: int = 1024,
    chunk_size: int = 256,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> Path:
    """Fit ``views`` INRs per image into ``folder`` and write its manifest; returns the folder.

    Args:
        images: the ``ImageSet`` to fit (its ``source`` is recorded).
        recipe: the ``FitRecipe`` (default DWSNets').
        split: (train, val, test) fractions or image counts, drawn with ``seed`` by image,
            so all views of an image share a split.
        shard_size: INRs per shard (the unit of resumption).
    Under ``torchrun`` (an initialised ``torch.distributed`` group), each rank fits its shards.
    """
    recipe = recipe or FitRecipe()
    folder = make_folder(folder)
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    config = {
        "recipe": recipe.to_dict(),
        "views": views,
        "seed": seed,
        "shard_size": shard_size,
        "num_images": len(images),
        "images_sha256": images_digest(images),
        "source": images.source,
        # INR initialisations come from gmn.seeding.derive_seed (since 0.1: one function for
        # training and fitting); a folder fitted with the older per-module function differs
        "seed_derivation": "gmn.seeding.derive_seed",
    }
    manifest, recorded = _earlier_build(folder)
    _check_or_write_config(folder, config, rank)
    _check_split(folder, manifest, split, seed)

    count = len(images) * views
    image_index = torch.arange(len(images)).repeat_interleave(views)
    view = torch.arange(views).repeat(len(images))
    num_shards = -(-count // shard_size)
    for shard in range(rank, num_shards, world):
        path = folder / shard_name(shard)
        if path.exists() and _intact(path, recorded):
            continue
        rows = slice(shard * shard_size, min((shard + 1) * shard_size, count))
        fitted = fit_selected(
            images.images, image_index[rows], view[rows], image_index[rows], recipe,
            seed=seed, chunk_size=chunk_size, device=device, progress=progress,
        )
        write_shard(path, fitted.params,
                    {"psnr": fitted.psnr.tolist(), "steps": fitted.steps.tolist()}, INR_DATASET)
    if world > 1:
        dist.barrier()
    if rank == 0:
        fresh = json.loads(json.dumps(_manifest(folder, images, config, recipe, image_index,
                                                view, num_shards, split, seed)))
        if manifest is None or _compared(manifest) != _compared(fresh):
            write_json(fresh, folder / MANIFEST, indent=1)
    if world > 1:
        dist.barrier()
    return folder


def _compared(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in PROVENANCE}


def _check_split(folder: Path, manifest, split, seed: int) -> None:
    """Refuse to rebuild a folder whose intact manifest holds another split: its INRs may
    serve runs of that split (nothing is written)."""
    if manifest is None:
        return
    stored = manifest.get("split", {})
    wanted = {"sizes": json.loads(json.dumps(list(split))), "seed": seed}
    if {"sizes": stored.get("sizes"), "seed": stored.get("seed")} != wanted:
        raise ValueError(
            f"{folder} holds INRs split {stored.get('sizes')} (split seed "
            f"{stored.get('seed')}); asked for split {wanted['sizes']} (split seed "
            f"{seed}): use that split, or another folder for this one"
        )


def _earlier_build(folder: Path) -> tuple[dict | None, dict[str, str | None]]:
    """(the intact manifest of an earlier build in ``folder`` or None, shard file → the
    sha256 it records). A damaged manifest vouches for nothing: every shard is then marked
    for refitting."""
    if not (folder / MANIFEST).exists():
        return None, {}
    try:
        manifest = read_manifest(folder, INR_DATASET)
        return manifest, {entry["file"]: entry["sha256"] for entry in manifest["shards"]}
    except (IntegrityError, ValueError, KeyError, TypeError) as err:
        warnings.warn(f"{err}; refitting every shard of {folder}", stacklevel=3)
        return None, {path.name: None for path in folder.glob("shard-*.safetensors")}


def _intact(path: Path, recorded: dict[str, str | None]) -> bool:
    """Whether the existing shard ``path`` can be kept: its sha256 is the one the manifest
    recorded or, with no manifest, it matches the hash of its content that it carries. A
    bad shard is named and refitted."""
    try:
        if path.name not in recorded:
            verify_shard(path)
        elif recorded[path.name] is None:
            raise IntegrityError(f"{path} is not vouched for by a readable manifest")
        else:
            verify_sha256(path, recorded[path.name], f"the manifest {path.parent / MANIFEST}")
        return True
    except IntegrityError as err:
        warnings.warn(f"{err}; refitting {path.name}", stacklevel=3)
        path.unlink()
        return False


def _check_or_write_config(folder: Path, config: dict, rank: int) -> None:
    check_build_record(folder, config, ignored=PROVENANCE, write=rank == 0)
    if rank == 0:  # files a killed build left half-written
        remove_stale_temporaries(folder)
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def _manifest(folder, images, config, recipe, image_index, view, num_shards, split, seed):
    shards, psnr, steps, start = [], [], [], 0
    for shard in range(num_shards):
        path = folder / shard_name(shard)
        fitted = read_shard_metadata(path, INR_DATASET)
        size = len(fitted["psnr"])
        shards.append({"file": path.name, "start": start, "stop": start + size,
                       "sha256": sha256(path)})
        psnr += fitted["psnr"]
        steps += fitted["steps"]
        start += size
    by_image = split_images(len(images), split, seed)
    inr_split = {name: inrs_of_images(image_index, by_image[name]) for name in SPLITS}
    keys = list(recipe.layout.shapes())
    train_params = Weights.from_stacked(
        GraphTemplate.from_module(recipe.layout.build()),
        ShardStore(folder, shards, keys, verify=False).gather(inr_split["train"]))
    return {
        "format": INR_DATASET.name,
        "format_version": INR_DATASET.version,
        "gmn_version": gmn.__version__,
        "layout": recipe.layout.to_dict(),
        "keys": keys,
        "num_inrs": len(image_index),
        "num_images": len(images),
        "views": config["views"],
        "seed": config["seed"],
        "init": recipe.init,
        "fit": config["recipe"],
        "source": config["source"],
        "images_sha256": config["images_sha256"],
        "labels": images.labels[image_index].tolist(),
        "image_ids": image_index.tolist(),
        "view": view.tolist(),
        "psnr": psnr,
        "steps": steps,
        "split": {"seed": seed, "sizes": list(split), "by": "image",
                  **{name: inr_split[name].tolist() for name in SPLITS}},
        "normalization": {"split": "train", "stats": layer_statistics(train_params)},
        "shards": shards,
    }
