"""`EditingConfig`: the options of the INR-editing benchmark, the data options of the
classification benchmark's :class:`BenchmarkConfig` (its images, INR fitting and run
options, and the checks of each) plus those of the task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from benchmarks.inr_classification.config import BenchmarkConfig

FAMILIES = ("no_edit", "weight_mlp", "gmn", "gmn_probe", "nfn_np", "mlp", "cnn")
REQUIRED_FAMILIES = ("no_edit", "gmn", "mlp", "cnn")
IMAGE_FAMILIES = ("mlp", "cnn")
FAMILY_DESCRIPTIONS = {
    "no_edit": "no edit: the input INR itself",
    "weight_mlp": "MLP on the flattened INR weights, outputs a change of every weight "
    "(per-coordinate standardised: not permutation equivariant)",
    "gmn": "GMN on the INR parameter graph alone, equivariant heads output a change of every "
    "weight and bias",
    "gmn_probe": "the same GMN + function samples (every neuron's values on the pixel grid: "
    "its output neuron sees the image)",
    "nfn_np": "NFN with NP layers (Zhou et al. 2023), outputs a change of every weight and bias",
    "mlp": "MLP on the rendered image, outputs the edited image",
    "cnn": "CNN on the rendered image, outputs the edited image (the image baseline)",
}


@dataclass
class EditingConfig(BenchmarkConfig):
    """Settings of one editing run; see ``python -m benchmarks.inr_editing --help``.

    ``dilation``: side of the square structuring element the images are dilated with (3, as
    in DWSNets and neural-graphs). ``epochs``, ``batch_size`` and ``lr`` train the image
    families and the weight MLP; the equivariant families have their own
    (``families.TRAINING``)."""

    FAMILIES: ClassVar[tuple[str, ...]] = FAMILIES
    REQUIRED_FAMILIES: ClassVar[tuple[str, ...]] = REQUIRED_FAMILIES

    families: tuple[str, ...] = FAMILIES
    epochs: int = 60
    out: str = "results/inr-editing-digits"
    # one thread: small batches gain little from a second, and on a shared machine two
    # threads spin while one waits for a core (5x the CPU time, measured here)
    threads: int | None = 1
    dilation: int = 3

    def __post_init__(self):
        super().__post_init__()
        if self.dilation < 1 or self.dilation % 2 == 0:
            raise ValueError(f"--dilation must be an odd size >= 1, got {self.dilation}")
        if self.zoo is not None or self.views != 1 or self.classes is not None:
            raise ValueError("INR editing fits one INR per image of --dataset (no --zoo, "
                             "--views or --classes)")

    @property
    def trained_families(self) -> list[str]:
        """The families that are trained (all but ``no_edit``)."""
        return [f for f in self.families if f != "no_edit"]
