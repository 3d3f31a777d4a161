"""Saving and loading CKA matrices: tensors in safetensors, names and settings in JSON."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

TENSORS = ("values", "p_values", "baseline", "ci_low", "ci_high")


def _paths(path: str | Path) -> tuple[Path, Path]:
    base = Path(path)
    if base.suffix in (".safetensors", ".json"):
        base = base.with_suffix("")
    return base.with_suffix(".safetensors"), base.with_suffix(".json")


def save_matrix(matrix, path: str | Path) -> tuple[Path, Path]:
    """Write ``path.safetensors`` (the ``[A, B]`` tensors) and ``path.json`` (layer names,
    estimator, confidence, permutations and the tensors file's sha256); returns both paths."""
    from safetensors.torch import save_file

    tensors_path, meta_path = _paths(path)
    tensors = {
        key: getattr(matrix, key).detach().to("cpu", torch.float64).contiguous()
        for key in TENSORS
        if getattr(matrix, key) is not None
    }
    save_file(tensors, str(tensors_path))
    est = matrix.estimator
    meta = {
        "format": "gmn.cka.CKAMatrix/1",
        "row_names": list(matrix.row_names),
        "col_names": list(matrix.col_names),
        "estimator": {
            "kernel": est.kernel,
            "debiased": est.debiased,
            "threshold": est.threshold,
            "median": est.median,
            "method": est.method,
        },
        "confidence": matrix.confidence,
        "permutations": matrix.permutations,
        "permutation_samples": matrix.permutation_samples,
        "tensors": sorted(tensors),
        "sha256": hashlib.sha256(tensors_path.read_bytes()).hexdigest(),
    }
    meta_path.write_text(json.dumps(meta, indent=1))
    return tensors_path, meta_path


def load_matrix(path: str | Path):
    """Read a matrix written by :func:`save_matrix`, checking the checksum, the tensor keys
    and that every tensor is ``[len(row_names), len(col_names)]``."""
    from safetensors.torch import load_file

    from .layer import Estimator
    from .matrix import CKAMatrix

    tensors_path, meta_path = _paths(path)
    for file in (tensors_path, meta_path):
        if not file.is_file():
            raise FileNotFoundError(f"no CKA matrix file {file}")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{meta_path} is not valid JSON ({error}); save the matrix again"
        ) from None
    if meta.get("format") != "gmn.cka.CKAMatrix/1":
        raise ValueError(f"{meta_path} is not a gmn CKA matrix (format {meta.get('format')!r})")
    digest = hashlib.sha256(tensors_path.read_bytes()).hexdigest()
    if digest != meta["sha256"]:
        raise ValueError(
            f"{tensors_path} does not match {meta_path} (sha256 {digest[:12]}… != "
            f"{meta['sha256'][:12]}…): it was changed or truncated; save the matrix again"
        )
    tensors = load_file(str(tensors_path))
    if sorted(tensors) != meta["tensors"]:
        raise ValueError(
            f"{tensors_path} holds {sorted(tensors)}, {meta_path} lists {meta['tensors']}"
        )
    shape = (len(meta["row_names"]), len(meta["col_names"]))
    for key, tensor in tensors.items():
        if tuple(tensor.shape) != shape:
            raise ValueError(
                f"{tensors_path}: {key} has shape {tuple(tensor.shape)}, names give {shape}"
            )
    return CKAMatrix(
        row_names=meta["row_names"],
        col_names=meta["col_names"],
        estimator=Estimator(**meta["estimator"]),
        confidence=meta["confidence"],
        permutations=meta.get("permutations"),  # absent from files written before it was kept
        permutation_samples=meta.get("permutation_samples"),
        **{key: tensors.get(key) for key in TENSORS},
    )
