"""Fit many SIRENs to images at once: ``fit_inrs``.

Each chunk of INRs is one batched computation: batched matmuls over [n_inrs, ...] parameter
tensors (``batched_siren``) and one Adam update over a flat buffer holding every parameter of
every INR. An INR that reaches the target PSNR is frozen (its parameters from the step that
reached it are kept) and dropped from the batch, so the work shrinks as INRs converge.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor
from tqdm.auto import tqdm

from gmn.data.batched_siren import Params, derive_seed, init_params, mse_and_grads
from gmn.models.siren import SirenLayout

INIT_MODES = ("independent", "shared")


@dataclass(frozen=True)
class FitRecipe:
    """Everything that decides the fitted parameters (stored in a dataset's manifest).

    The defaults are the DWSNets recipe: its SIREN 2→32→32→1 (ω₀ = 30, +0.5 output), Adam at
    5e-4 on the per-image MSE over all pixels, up to 1,000 steps, stopping at 40 dB PSNR.
    ``init="shared"`` starts every image's INR from the same initialisation (one per view).
    """

    layout: SirenLayout = field(default_factory=SirenLayout)
    steps: int = 1000
    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    target_psnr: float | None = 40.0
    init: str = "independent"

    def __post_init__(self):
        if self.init not in INIT_MODES:
            raise ValueError(f"init must be one of {INIT_MODES}, got {self.init!r}")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "layout": self.layout.to_dict(),
            "betas": list(self.betas),
            "loss": "mean squared error over pixels and channels, pixel values in [0, 1]",
            "coords": "pixel centres on a [-1, 1]^2 grid, (y, x), row-major",
            "psnr": "10 log10(1 / mse)",
        }

    @classmethod
    def from_dict(cls, config: dict) -> FitRecipe:
        names = {f for f in cls.__dataclass_fields__}
        kept = {k: v for k, v in config.items() if k in names}
        kept["layout"] = SirenLayout.from_dict(kept["layout"])
        kept["betas"] = tuple(kept["betas"])
        return cls(**kept)


@dataclass
class FitResult:
    """Fitted INRs, ordered image-major: INR ``n`` fits image ``image_index[n]``, view ``view[n]``.

    params: ``{state_dict key: Tensor[n_inrs, *shape]}`` (the keys of ``Siren().state_dict()``);
    psnr [n_inrs] in dB at the kept parameters; steps [n_inrs] Adam steps taken.
    """

    params: Params
    psnr: Tensor
    steps: Tensor
    image_index: Tensor
    view: Tensor
    recipe: FitRecipe
    seed: int


def psnr_from_mse(mse: Tensor) -> Tensor:
    """PSNR in dB of images in [0, 1]."""
    return -10.0 * torch.log10(mse.clamp_min(1e-20))


def inr_seeds(recipe: FitRecipe, seed: int, image_ids: Tensor, views: Tensor) -> list[int]:
    """The initialisation seed of each INR: a function of (seed, image id, view) only."""
    if recipe.init == "shared":
        return [derive_seed(seed, 0, v) for v in views.tolist()]
    return [derive_seed(seed, 1, i, v) for i, v in zip(image_ids.tolist(), views.tolist())]


def fit_inrs(
    images,
    *,
    recipe: FitRecipe | None = None,
    views: int = 1,
    seed: int = 0,
    chunk_size: int = 256,
    device: str | torch.device = "cpu",
    image_ids: Tensor | None = None,
    progress: bool = True,
    **recipe_overrides,
) -> FitResult:
    """Fit ``views`` SIRENs to each image.

    Args:
        images: [N, C, H, W] floats in [0, 1], or an ``ImageSet``.
        recipe: a ``FitRecipe``; keyword overrides (``steps=``, ``lr=``, ``target_psnr=``,
            ``init=``, ``layout=``) replace its fields.
        views: INRs per image, each from its own initialisation.
        seed: the same seed gives bit-identical parameters on the CPU, whatever ``chunk_size``.
        chunk_size: INRs fitted together (bounds memory).
        image_ids: [N] ids that seed each image's INRs (default ``arange(N)``).
    """
    images = getattr(images, "images", images)
    recipe = _with_overrides(recipe or FitRecipe(), recipe_overrides)
    if image_ids is None:
        image_ids = torch.arange(images.shape[0])
    image_index = torch.arange(images.shape[0]).repeat_interleave(views)
    view = torch.arange(views).repeat(images.shape[0])
    return fit_selected(
        images, image_index, view, image_ids[image_index], recipe,
        seed=seed, chunk_size=chunk_size, device=device, progress=progress,
    )


def fit_selected(
    images: Tensor,
    image_index: Tensor,
    view: Tensor,
    image_ids: Tensor,
    recipe: FitRecipe,
    *,
    seed: int,
    chunk_size: int = 256,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> FitResult:
    """Fit one INR per (image_index[n], view[n]) pair; image_ids [n] are the seeding ids."""
    _check_images(images, recipe.layout)
    seeds = inr_seeds(recipe, seed, image_ids, view)
    height, width = images.shape[-2:]
    parts = []
    chunks = range(0, len(seeds), chunk_size)
    bar = tqdm(total=len(seeds), desc="fitting INRs", unit="INR", disable=not progress)
    for start in chunks:
        stop = min(start + chunk_size, len(seeds))
        chunk_images = images[image_index[start:stop]].to(device=device, dtype=torch.float32)
        targets = chunk_images.flatten(2).transpose(1, 2).contiguous()  # [B, H*W, C]
        init = init_params(recipe.layout, seeds[start:stop])
        parts.append(_fit_chunk(recipe, init, targets, height, width))
        bar.update(stop - start)
    bar.close()
    if not parts:
        raise ValueError("fit_inrs got no images to fit")
    return FitResult(
        params={k: torch.cat([p[0][k] for p in parts]) for k in recipe.layout.shapes()},
        psnr=torch.cat([p[1] for p in parts]),
        steps=torch.cat([p[2] for p in parts]),
        image_index=image_index.clone(),
        view=view.clone(),
        recipe=recipe,
        seed=seed,
    )


def _with_overrides(recipe: FitRecipe, overrides: dict) -> FitRecipe:
    unknown = set(overrides) - set(FitRecipe.__dataclass_fields__)
    if unknown:
        raise TypeError(f"fit_inrs got unknown arguments {sorted(unknown)}")
    return FitRecipe(**{**asdict(recipe), "layout": recipe.layout, **overrides})


def _check_images(images: Tensor, layout: SirenLayout) -> None:
    if images.dim() != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    if images.shape[1] != layout.out_features:
        raise ValueError(
            f"images have {images.shape[1]} channels but the SIREN layout has "
            f"out_features={layout.out_features}"
        )


class _FlatAdam:
    """Parameters, gradients and Adam moments of B INRs, each a flat buffer; per key a
    contiguous [B, *shape] view (so batched matmuls can write gradients in place)."""

    def __init__(self, params: Params, device):
        self.shapes = {k: tuple(v.shape[1:]) for k, v in params.items()}
        self.flat = torch.cat([v.reshape(-1) for v in params.values()]).to(device)
        self.grad = torch.zeros_like(self.flat)
        self.exp_avg = torch.zeros_like(self.flat)
        self.exp_avg_sq = torch.zeros_like(self.flat)
        self.batch = next(iter(params.values())).shape[0]

    def views(self, buffer: Tensor) -> Params:
        out, offset = {}, 0
        for key, shape in self.shapes.items():
            size = self.batch * math.prod(shape)
            out[key] = buffer[offset : offset + size].view(self.batch, *shape)
            offset += size
        return out

    def keep(self, rows: Tensor) -> None:
        """Drop every INR not in ``rows`` from the buffers."""
        for name in ("flat", "grad", "exp_avg", "exp_avg_sq"):
            views = self.views(getattr(self, name)).values()
            setattr(self, name, torch.cat([v.index_select(0, rows).reshape(-1) for v in views]))
        self.batch = rows.numel()

    def step(self, t: int, lr: float, betas: tuple[float, float], eps: float) -> None:
        beta1, beta2 = betas
        self.exp_avg.lerp_(self.grad, 1.0 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(self.grad, self.grad, value=1.0 - beta2)
        denom = (self.exp_avg_sq / (1.0 - beta2**t)).sqrt_().add_(eps)
        self.flat.addcdiv_(self.exp_avg, denom, value=-lr / (1.0 - beta1**t))


def _at_least_two(rows: Tensor) -> Tensor:
    """A single row is fitted twice: a batched matmul over one matrix takes another kernel,
    which would make an INR's parameters depend on how many INRs were fitted beside it."""
    return rows.repeat(2) if rows.numel() == 1 else rows


def _fit_chunk(
    recipe: FitRecipe, init: Params, targets: Tensor, height: int, width: int
) -> tuple[Params, Tensor, Tensor]:
    """Adam on B INRs; targets [B, H*W, C]. Returns (params, psnr [B], steps [B]) on the CPU."""
    layout = recipe.layout
    batch = targets.shape[0]
    active = _at_least_two(torch.arange(batch))  # the chunk row of each row being fitted
    targets = targets[active.to(targets.device)]
    state = _FlatAdam({k: v[active] for k, v in init.items()}, targets.device)
    final = {k: torch.empty(batch, *s) for k, s in state.shapes.items()}
    psnr = torch.empty(batch)
    steps = torch.full((batch,), recipe.steps, dtype=torch.long)
    target = recipe.target_psnr
    for t in range(recipe.steps + 1):
        params = state.views(state.flat)
        mse = mse_and_grads(layout, params, height, width, targets, state.views(state.grad))
        quality = psnr_from_mse(mse)
        if t == recipe.steps:
            done = torch.ones_like(mse, dtype=torch.bool)
        elif target is not None:
            done = quality >= target
        else:
            done = torch.zeros_like(mse, dtype=torch.bool)
        if done.any():
            rows = done.nonzero().squeeze(1)
            finished = active[rows.cpu()]
            for key, value in params.items():
                final[key][finished] = value.index_select(0, rows).cpu()
            psnr[finished] = quality[rows].cpu()
            steps[finished] = t
            keep = (~done).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            keep = _at_least_two(keep)
            active = active[keep.cpu()]
            targets = targets.index_select(0, keep)
            state.keep(keep)
        state.step(t + 1, recipe.lr, recipe.betas, recipe.eps)
    return final, psnr, steps

