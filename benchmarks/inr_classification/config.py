"""`BenchmarkConfig`: every option of the benchmark, with the defaults of the quick run."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import ClassVar

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
ZOOS = ("dwsnets-mnist", "dwsnets-fmnist", "nfn")
FAMILIES = ("gmn", "mlp", "cnn", "weight_mlp", "vit", "gmn_noaug", "gmn_probe", "nfn_np")
IMAGE_FAMILIES = ("mlp", "cnn", "vit")
GMN_FAMILIES = ("gmn", "gmn_noaug", "gmn_probe")
PARAMETER_FAMILIES = (*GMN_FAMILIES, "weight_mlp", "nfn_np")
REQUIRED_FAMILIES = ("gmn", "mlp", "cnn")
# gmn_noaug: an exactly invariant GMN only changes its random stream without permutations;
# nfn_np: the baseline from the literature, asked for by name (--families ...,nfn_np)
DEFAULT_FAMILIES = tuple(f for f in FAMILIES if f not in ("gmn_noaug", "nfn_np"))
FAMILY_DESCRIPTIONS = {
    "gmn": "GMN on the INR parameter graph alone (weights and biases, no function samples); "
    "random hidden-neuron permutations",
    "mlp": "MLP on the pixels",
    "cnn": "CNN on the pixels",
    "weight_mlp": "MLP on the flattened INR weights (per-coordinate standardised: reads "
    "aligned neurons, not permutation invariant)",
    "vit": "ViT on the pixels",
    "gmn_noaug": "the weights-only GMN without the random permutations",
    "gmn_probe": "GMN on the parameter graph + function samples: every neuron's values on the "
    "pixel grid (its output neuron sees the image)",
    "nfn_np": "NFN with NP layers (Zhou et al. 2023) on the INR weights alone: Gaussian Fourier "
    "features, equivariant layers, invariant pooling",
}

# Epochs of a family when neither --epochs nor (for a GMN family) --gmn-config's "epochs" is
# given: the weights-only GMNs (gmn, gmn_noaug) train longer (docs/accuracy.md). A family's
# epochs are, first to last: --epochs FAMILY=N, --gmn-config's "epochs" (GMN families),
# --epochs N, these defaults.
DEFAULT_EPOCHS = 10
WEIGHTS_ONLY_GMN_EPOCHS = 60

# Options that change no number (where and how the run executes), left out of cache keys.
RUNTIME_OPTIONS = ("out", "device", "threads", "resume", "progress", "root", "zoo_dir")


@dataclass
class BenchmarkConfig:
    """Settings of one benchmark run; see ``python -m benchmarks.inr_classification --help``."""

    FAMILIES: ClassVar[tuple[str, ...]] = FAMILIES
    REQUIRED_FAMILIES: ClassVar[tuple[str, ...]] = REQUIRED_FAMILIES

    dataset: str = "digits"
    root: str | None = None
    zoo: str | None = None
    zoo_dir: str | None = None
    source_split: str = "train"
    image_size: int | None = None
    classes: tuple[int, ...] | None = None
    limit: int | None = None
    views: int = 1
    stream_shards: int | None = None
    inr_steps: int = 300
    inr_lr: float = 1e-3
    inr_target_psnr: float | None = 40.0
    inr_hidden: tuple[int, ...] | None = None
    inr_init: str = "shared"
    split: tuple[float, float, float] = (0.7, 0.1, 0.2)
    seed: int = 0
    seeds: int = 3
    families: tuple[str, ...] = DEFAULT_FAMILIES
    epochs: int | None = None  # every family's; None: each family's default
    family_epochs: dict = field(default_factory=dict)  # {family: epochs}, over all others
    batch_size: int = 64
    lr: float = 1e-3
    gmn_config: dict = field(default_factory=dict)
    cka_permutations: int = 100
    cka_permutation_samples: int = 2000
    procrustes: bool = False
    out: str = "results/inr-digits"
    device: str = "cpu"
    threads: int | None = None
    resume: bool = True
    progress: bool = True

    def __post_init__(self):
        if self.inr_hidden is None:  # 8×8 digits need less than the DWSNets SIREN
            self.inr_hidden = (16, 16) if self.dataset == "digits" else (32, 32)
        self.inr_hidden = tuple(self.inr_hidden)
        if self.inr_init not in ("shared", "independent"):
            raise ValueError(f"--inr-init must be shared or independent, got {self.inr_init!r}")
        if self.source_split not in ("train", "test"):
            raise ValueError(f"--source-split must be train or test, got {self.source_split!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"--dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.zoo is not None and self.zoo not in ZOOS:
            raise ValueError(f"--zoo must be one of {ZOOS}, got {self.zoo!r}")
        if (self.zoo is None) != (self.zoo_dir is None):
            raise ValueError("--zoo takes a kind and a folder: --zoo dwsnets-mnist DIR")
        self.check_families()
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be >= 1 (a number of images), got {self.limit}")
        if self.zoo is not None and (self.limit is not None or self.classes is not None):
            raise ValueError("--limit and --classes subset fitted datasets; a --zoo is used whole")
        if self.classes is not None:
            self.classes = tuple(sorted(set(self.classes)))
            if len(self.classes) < 2:
                raise ValueError(f"--classes needs at least two classes, got {self.classes}")
        if self.seeds < 2:
            raise ValueError(f"--seeds must be >= 2 (cross-seed CKA needs two), got {self.seeds}")
        if self.stream_shards is not None and self.stream_shards < 1:
            raise ValueError(f"--stream-shards must be >= 1, got {self.stream_shards}")
        if self.stream_shards is not None and self.zoo is not None:
            raise ValueError("--stream-shards streams fitted INR shards; a --zoo is read whole")
        for name in ("views", "epochs", "batch_size", "inr_steps"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if (
            len(self.split) != 3
            or any(f <= 0 for f in self.split)
            or abs(sum(self.split) - 1) > 1e-6
        ):
            raise ValueError(
                f"--split must be three positive fractions summing to 1, got {self.split}"
            )
        if self.cka_permutations < 0:
            raise ValueError(f"--cka-permutations must be >= 0, got {self.cka_permutations}")
        if self.cka_permutation_samples < 4:  # the debiased estimator needs 4 samples
            raise ValueError(
                f"--cka-permutation-samples must be >= 4, got {self.cka_permutation_samples}"
            )
        for family, epochs in self.family_epochs.items():
            if family not in self.FAMILIES:
                raise ValueError(
                    f"--epochs {family}=…: unknown family; choose from {self.FAMILIES}")
            if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
                raise ValueError(f"--epochs {family}={epochs}: epochs must be an integer >= 1")
        if not isinstance(self.gmn_config, dict):
            raise ValueError("--gmn-config must be a JSON object")

    def check_families(self) -> None:
        """Raise ``ValueError`` unless ``families`` are known and include the required ones
        (the class's ``FAMILIES`` and ``REQUIRED_FAMILIES``)."""
        known, required = self.FAMILIES, self.REQUIRED_FAMILIES
        unknown = sorted(set(self.families) - set(known))
        if unknown:
            raise ValueError(f"unknown families {unknown}; choose from {known}")
        missing = [f for f in required if f not in self.families]
        if missing:
            raise ValueError(
                f"--families must include {required} (the study compares them); missing "
                f"{missing}"
            )

    @property
    def seed_list(self) -> list[int]:
        """The training seeds: ``seed, seed + 1, …`` (``seeds`` of them)."""
        return [self.seed + i for i in range(self.seeds)]

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    def key(self, *names: str) -> dict:
        """The values of ``names`` (all result-affecting options when empty), for cache keys."""
        values = self.to_dict()
        names = names or tuple(k for k in values if k not in RUNTIME_OPTIONS)
        return {k: values[k] for k in names}
