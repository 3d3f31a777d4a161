"""INR data: image sources, batched SIREN fitting, dataset folders, public INR zoo readers and
augmentations of :class:`gmn.graph.weights.Weights`. See docs/data.md.

Owns images, INR fitting, the store of stacked networks (INR datasets and CNN zoos,
:mod:`gmn.data.storage`), INR zoo readers and weight-space augmentations.
May import: gmn.graph, gmn.models, gmn.files, gmn.seeding.
"""

from gmn.data.augment import (
    Compose,
    GaussianNoise,
    InRawSpace,
    RandomPermutation,
    RandomRotation,
    RandomScale,
    RandomSignFlip,
    RandomTranslation,
    WeightDropout,
    mixup,
    rotate_inputs,
    scale_inputs,
    translate_inputs,
)
from gmn.data.batched_siren import render
from gmn.data.build import build_dataset
from gmn.data.dataset import INRDataset
from gmn.data.fit import FitRecipe, FitResult, fit_inrs
from gmn.data.images import ImageSet, from_tensor, load_digits, resize
from gmn.data.inr_zoos import read_dwsnets_fmnist, read_dwsnets_mnist, read_nfn_siren
from gmn.data.normalize import Normalize, layer_statistics
from gmn.data.sources import load_images
from gmn.data.split import split_images

__all__ = [
    "Compose", "FitRecipe", "FitResult", "GaussianNoise", "INRDataset", "InRawSpace", "ImageSet",
    "Normalize", "RandomPermutation", "RandomRotation", "RandomScale", "RandomSignFlip",
    "RandomTranslation", "WeightDropout",
    "build_dataset", "fit_inrs", "from_tensor", "layer_statistics",
    "load_digits", "load_images",
    "mixup", "read_dwsnets_fmnist", "read_dwsnets_mnist", "read_nfn_siren", "render", "resize",
    "rotate_inputs", "scale_inputs", "split_images", "translate_inputs",
]
