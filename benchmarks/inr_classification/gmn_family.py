"""The GMN families: the one place that decides how the benchmark builds and trains a GMN.

A GMN reads a batch of flat INR parameter vectors [B, P] (``gmn.nn.params_to_gmn``:
``build_gmn``, ``ParamsToGraph`` turns them into a batch of parameter graphs), so the GMN
and the weight-space MLP share one dataset and one augmentation.

``gmn`` and ``gmn_noaug`` read the parameter graph alone, with the preset
:data:`gmn.nn.INR_WEIGHTS_ONLY` (the best weights-only configuration, ``docs/accuracy.md``).
``gmn_probe`` also gets **function samples**: each neuron's values at the H×W pixel-centre
coordinates the INRs were fitted on (the query points, ``gmn.models.siren.image_grid``),
appended to the node features ``x`` by ``gmn.graph.function_samples``: K = H·W extra
columns. They are computed from the parameters and permute with the hidden neurons (the GMN
stays permutation invariant), but the output neuron's function samples are the image itself.

GMN families train with weight-space augmentation (:func:`gmn_augmentation`): every INR of a
training batch is moved by up to ``shift_pixels`` whole pixels (its first-layer bias, see
``gmn.data.augment.RandomPixelShift``; ``gmn_probe`` only by default), and
``gmn``/``gmn_probe`` (not ``gmn_noaug``) also permute its hidden neurons at random.
``"auto"`` shifts by one pixel per 28 pixels of the shorter image side: 1 on MNIST and
CIFAR-10, 0 on 8×8 digits, where one pixel is an eighth of the picture and a shifted INR
shows a row it was never fitted on.

``--gmn-config`` overrides the defaults below for every GMN family: keys of
:class:`gmn.nn.GMNConfig` configure the model, keys of ``GMN_TRAIN_DEFAULTS`` its training.
Whether function samples are used is decided by the family, never by ``--gmn-config``.
"""

from __future__ import annotations

from torch import Tensor

from gmn.data.augment import (
    Compose,
    GaussianNoise,
    InRawSpace,
    RandomPermutation,
    RandomPixelShift,
    RandomSignFlip,
)
from gmn.nn import INR_WEIGHTS_ONLY

from .config import DEFAULT_EPOCHS, WEIGHTS_ONLY_GMN_EPOCHS

GMN_MODEL_DEFAULTS = {}  # over the preset gmn.nn.INR_WEIGHTS_ONLY (gmn_build_options)
GMN_PROBE_MODEL_DEFAULTS = {  # the function-sample GMN as measured before the weights-only one
    "hidden_dim": 64,
    "num_layers": 2,
    "dropout": 0.2,
    "readout": ["output_mean", "node_mean"],
    "fourier_frequencies": 0,
    "edge_message": "additive",
    "rank_embedding": False,
    "canonical_standardization": False,
}
GMN_TRAIN_DEFAULTS = {  # the weights-only GMN (docs/accuracy.md)
    "lr": 1e-2,
    "weight_decay": 0.05,
    "batch_size": 32,
    "epochs": WEIGHTS_ONLY_GMN_EPOCHS,
    "warmup_fraction": 0.05,
    # a pixel shift moves first-layer biases, which decide the canonical slots: on MNIST the
    # weights-only GMN learned faster without it (docs/accuracy.md)
    "shift_pixels": 0,
    # Gaussian noise in units of each parameter's training std, and label smoothing: on the
    # MNIST sample they lifted the bilinear-readout GMN from 81 to 84-85 % (docs/accuracy.md)
    "input_noise": 0.6,
    "label_smoothing": 0.1,
}
# Training options off by default that enter a run's options (and cache key) only when given,
# so runs recorded before they existed are reused: random function-preserving sign flips of
# the INRs' hidden neurons (odd activations only).
OPTIONAL_TRAIN_OPTIONS = {"sign_flip": False}
GMN_PROBE_TRAIN_DEFAULTS = {  # as many epochs as the image models
    **GMN_TRAIN_DEFAULTS, "lr": 3e-3, "batch_size": 64, "epochs": DEFAULT_EPOCHS,
    "shift_pixels": "auto",
    "input_noise": 0.0, "label_smoothing": 0.0,
}


def split_gmn_config(overrides: dict, family: str = "gmn", epochs: int | None = None,
                     own_epochs: int | None = None) -> tuple[dict, dict]:
    """``--gmn-config`` → (GMN build options, training options) of ``family``, each over its
    defaults. The training options' ``epochs``: ``own_epochs`` (``--epochs FAMILY=N``) when
    given, else ``--gmn-config``'s, else ``epochs`` (``--epochs N``), else the family's
    default.

    The build options (``gmn.nn.params_to_gmn.build_gmn``'s) are ``function_samples``
    (decided by the family: true for ``gmn_probe`` only) plus the GMN keyword options; unknown
    model keys are rejected by ``GMNConfig.from_kwargs`` with the valid list.
    """
    if family not in ("gmn", "gmn_noaug", "gmn_probe"):
        raise ValueError(f"{family!r} is not a GMN family (gmn, gmn_noaug, gmn_probe)")
    if "function_samples" in overrides:
        raise ValueError(
            "--gmn-config function_samples is decided by the family: gmn and gmn_noaug read "
            "the parameter graph alone, gmn_probe adds function samples (choose with --families)"
        )
    train_names = {*GMN_TRAIN_DEFAULTS, *OPTIONAL_TRAIN_OPTIONS}
    train = {k: v for k, v in overrides.items() if k in train_names}
    model = {k: v for k, v in overrides.items() if k not in train_names}
    samples = family == "gmn_probe"
    defaults = GMN_PROBE_MODEL_DEFAULTS if samples else GMN_MODEL_DEFAULTS
    train_defaults = GMN_PROBE_TRAIN_DEFAULTS if samples else GMN_TRAIN_DEFAULTS
    every = {} if epochs is None else {"epochs": epochs}
    own = {} if own_epochs is None else {"epochs": own_epochs}
    return (
        {"function_samples": samples, **defaults, **model},
        {**train_defaults, **every, **train, **own},
    )


def gmn_build_options(family: str, model_options: dict) -> dict:
    """What ``build_gmn`` gets: ``model_options`` (:func:`split_gmn_config`'s) over the preset
    :data:`gmn.nn.INR_WEIGHTS_ONLY` for ``gmn``/``gmn_noaug`` (``gmn_probe``'s own defaults
    are all in ``GMN_PROBE_MODEL_DEFAULTS``). The run's key holds the preset through the
    resolved architecture, and ``model_options`` without it, as before the preset had a name,
    so runs cached then are reused."""
    preset = {} if family == "gmn_probe" else INR_WEIGHTS_ONLY
    return {**preset, **model_options}


def gmn_augmentation(template, image_size: tuple[int, int], shift_pixels: int | str,
                     permute: bool,
                     raw_affine: tuple[Tensor | None, Tensor | None] = (None, None),
                     input_noise: float = 0.0, param_std: Tensor | None = None,
                     sign_flip: bool = False):
    """The Trainer transform of ``(params [B, P], labels)`` batches, one ``Compose``: Gaussian
    noise of ``input_noise`` × ``param_std`` [P] (each parameter's spread over the training
    INRs) added to each parameter, each INR moved by up to ``shift_pixels`` whole pixels
    (``"auto"``: ``min(image_size) // 28``) and (``sign_flip``) its hidden neurons' signs
    flipped at random, then (``permute``) its hidden neurons permuted at random.

    The shift and the flips act on the INRs' own parameters (:class:`gmn.data.InRawSpace`
    with ``raw_affine`` = (scale, shift) [P] undoing a standardisation): both keep the
    rendered image (the shift up to the pixels it moves in). Returns None when there is
    nothing to do."""
    if shift_pixels == "auto":
        shift_pixels = min(image_size) // 28
    if isinstance(shift_pixels, bool) or not isinstance(shift_pixels, int) or shift_pixels < 0:
        raise ValueError(
            f'--gmn-config shift_pixels must be "auto" or an integer >= 0, got {shift_pixels!r}'
        )
    if isinstance(input_noise, bool) or not isinstance(input_noise, (int, float)) \
            or input_noise < 0:
        raise ValueError(f"--gmn-config input_noise must be a number >= 0, got {input_noise!r}")
    if not isinstance(sign_flip, bool):
        raise ValueError(f"--gmn-config sign_flip must be true or false, got {sign_flip!r}")
    if input_noise and param_std is None:
        raise ValueError("input_noise needs param_std, each parameter's training spread [P]")
    scale, offset = raw_affine
    if (scale is None) != (offset is None):
        raise ValueError("raw_affine takes both a scale and a shift [P], or neither")
    in_raw = ([RandomPixelShift(*image_size, shift_pixels)] if shift_pixels else []) \
        + ([RandomSignFlip()] if sign_flip else [])
    if in_raw and scale is not None:
        in_raw = [InRawSpace(Compose(in_raw), scale, offset)]
    steps = ([GaussianNoise(input_noise * param_std)] if input_noise else []) + in_raw \
        + ([RandomPermutation()] if permute else [])
    if not steps:
        return None
    return Compose(steps, template=template)
