"""Stages "inrs" and "split": the data every model family reads.

Images are loaded (``gmn.data.load_images``) and INRs fitted to them into a dataset folder
``--out/inrs`` (``gmn.data.build_dataset``: sharded, resumable after a kill, with a seeded
split *by image* and train-split normalisation statistics in its manifest). Every family is
trained, validated and tested on the same images; the INR views of one image never straddle
two splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .config import BenchmarkConfig

INR_FOLDER = "inrs"


@dataclass
class BenchmarkData:
    """The study's data.

    setting: how the INRs were initialised, said beside every number of the report
    (``"shared initialisation"``, or ``"independent initialisation"`` as in the public zoos).
    images: [N, C, H, W], standardised per channel with train-split statistics.
    labels: [N] long. params: [N, P] parameters of each image's first INR (view 0) in
    ``template`` order, each layer's weights and biases standardised with train-split
    statistics (a per-layer scalar, so hidden-neuron permutations still act on them): what
    parameter families are validated and tested on.
    train_set: every INR (all views) of the training images as ``(params [P], label)`` pairs
    standardised alike, read from the dataset's shards batch by batch
    (:class:`gmn.data.dataset.ParameterRows`); None: ``params`` of the training images.
    psnr: [N, V] fit quality in dB. split: ``{"train"|"val"|"test": Tensor}`` image indices.
    key: what decides the data (part of every later cache key).
    param_scale, param_shift: [P] undo that standardisation,
    ``raw = params * param_scale + param_shift`` (the INRs' own parameters, which the GMN's
    function samples evaluate).
    """

    name: str
    setting: str
    images: Tensor
    labels: Tensor
    params: Tensor
    psnr: Tensor
    split: dict[str, Tensor]
    template: object
    num_classes: int
    key: dict
    description: str
    inr_description: str
    param_scale: Tensor | None = None
    param_shift: Tensor | None = None
    train_set: object | None = None


def _inverse_normalization(normalization, example) -> tuple[Tensor, Tensor]:
    """[P] scale and shift with ``normalization.inverse(w).params == w.params * scale + shift``
    (per-key affine maps; ``example``, a ``Weights``, gives the template and dtype)."""
    zeros = example[:1].with_params(torch.zeros_like(example.params[:1]))
    ones = example[:1].with_params(torch.ones_like(example.params[:1]))
    shift = normalization.inverse(zeros).params[0]
    scale = normalization.inverse(ones).params[0] - shift
    return scale, shift


def load_source_images(config: BenchmarkConfig):
    """The images of ``--dataset`` (``--limit`` of them: a seeded random subset)."""
    from gmn.data.sources import load_images

    images = load_images(
        config.dataset, config.root, split=config.source_split, size=config.image_size
    )
    if config.classes is not None:
        wanted = torch.tensor(config.classes)
        keep = torch.isin(images.labels, wanted).nonzero().squeeze(1)
        missing = sorted(set(config.classes) - set(images.labels.unique().tolist()))
        if missing:
            raise ValueError(f"--classes {missing} do not occur in {config.dataset}")
        subset = images.subset(keep)
        images = type(images)(
            subset.images,
            torch.searchsorted(wanted, subset.labels),
            {**subset.source, "classes": list(config.classes)},
        )
    if config.limit is not None and config.limit < len(images):
        generator = torch.Generator().manual_seed(config.seed)
        keep = torch.randperm(len(images), generator=generator)[: config.limit].sort().values
        images = images.subset(keep)
    return images


def standardise_images(images: Tensor, train: Tensor) -> Tensor:
    """Per-channel standardisation with the statistics of the ``train`` images."""
    mean = images[train].mean(dim=(0, 2, 3), keepdim=True)
    std = images[train].std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return (images - mean) / std


def _image_split(dataset) -> dict[str, Tensor]:
    """Image indices of each split of an image-major INR dataset."""
    image_ids = dataset.info["image_ids"]
    return {k: image_ids[v].unique() for k, v in dataset.splits.items()}


ZOO_IMAGE_SIZE = {"dwsnets-mnist": 28, "dwsnets-fmnist": 28, "nfn": 32}


def prepare_zoo_data(config: BenchmarkConfig) -> BenchmarkData:
    """A public INR zoo (``--zoo KIND DIR``) with its own split. The image families train on
    the INRs' renderings (the zoos ship no images), one image per INR."""
    from gmn.data import inr_zoos
    from gmn.data.batched_siren import render

    readers = {
        "dwsnets-mnist": inr_zoos.read_dwsnets_mnist,
        "dwsnets-fmnist": inr_zoos.read_dwsnets_fmnist,
        "nfn": inr_zoos.read_nfn_siren,
    }
    dataset = readers[config.zoo](config.zoo_dir, progress=config.progress)
    raw = dataset.weights()
    size = config.image_size or ZOO_IMAGE_SIZE[config.zoo]
    images = render(raw, size, size).clamp(0.0, 1.0)
    template = dataset.template
    split = dict(dataset.splits)
    layout = dataset.layout
    scale, shift = _inverse_normalization(dataset.normalization, raw)
    return BenchmarkData(
        name=config.zoo,
        setting="independent initialisation (a public zoo: one random start per INR)",
        images=standardise_images(images, split["train"]),
        labels=dataset.labels,
        params=dataset.normalization(raw).params,
        psnr=torch.full((len(dataset), 1), float("nan")),
        split=split,
        template=template,
        num_classes=int(dataset.labels.max()) + 1,
        key={
            "zoo": config.zoo,
            "num_inrs": len(dataset),
            "split_sizes": [len(split[k]) for k in ("train", "val", "test")],
            "content_sha256": dataset.content_sha256(),  # another folder, other weights
        },
        description=f"INR zoo {config.zoo} ({len(dataset)} INRs; images rendered at {size}×{size})",
        inr_description=f"read from {config.zoo_dir}: SIREN {'→'.join(map(str, layout.widths))}",
        param_scale=scale,
        param_shift=shift,
    )


def prepare_data(config: BenchmarkConfig, out: Path) -> BenchmarkData:
    """Load images, fit INRs into ``out/inrs`` (or reuse them), read the split; or read
    ``--zoo``."""
    if config.zoo is not None:
        return prepare_zoo_data(config)
    from gmn.data.build import build_dataset
    from gmn.data.dataset import INRDataset, ParameterRows
    from gmn.data.fit import FitRecipe
    from gmn.models.siren import SirenLayout

    images = load_source_images(config)
    layout = SirenLayout(hidden=config.inr_hidden, out_features=images.images.shape[1])
    recipe = FitRecipe(
        layout=layout,
        steps=config.inr_steps,
        lr=config.inr_lr,
        target_psnr=config.inr_target_psnr,
        init=config.inr_init,
    )
    folder = build_dataset(
        images,
        out / INR_FOLDER,
        recipe=recipe,
        views=config.views,
        seed=config.seed,
        split=config.split,
        device=config.device,
        progress=config.progress,
    )
    dataset = INRDataset.open(folder, max_loaded_shards=config.stream_shards)
    n, views = len(images), config.views
    template = dataset.template
    raw = dataset.weights(torch.arange(n) * views)  # image-major: view 0 of each image
    params = dataset.normalization(raw).params
    scale, shift = _inverse_normalization(dataset.normalization, raw)
    psnr = dataset.info["psnr"].reshape(n, views)
    split = _image_split(dataset)
    train_inrs = (split["train"][:, None] * views + torch.arange(views)).flatten()
    manifest = dataset.info["manifest"]
    h, w = images.images.shape[-2:]
    return BenchmarkData(
        name=config.dataset,
        setting=f"{config.inr_init} initialisation",
        images=standardise_images(images.images, split["train"]),
        labels=images.labels,
        params=params,
        psnr=psnr,
        split=split,
        template=template,
        num_classes=int(images.labels.max()) + 1,
        key={
            "images_sha256": manifest["images_sha256"],
            "fit": manifest["fit"],
            "views": views,
            "seed": manifest["seed"],
            "split": manifest["split"]["sizes"],
            "shards_sha256": [shard["sha256"] for shard in manifest["shards"]],
        },
        description=f"{config.dataset}, {n} images of {images.images.shape[1]}×{h}×{w}",
        inr_description=(
            f"SIREN {'→'.join(map(str, layout.widths))} (ω₀ = {layout.w0:g}), {views} "
            f"view(s) per image, {config.inr_init} initialisation, ≤ {config.inr_steps} "
            f"Adam steps at {config.inr_lr:g}, stop "
            f"at {config.inr_target_psnr} dB; PSNR {psnr.mean():.1f} ± {psnr.std():.1f} dB"
        ),
        param_scale=scale,
        param_shift=shift,
        train_set=ParameterRows(dataset, train_inrs),
    )
