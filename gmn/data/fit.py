"""Fit many SIRENs to images at once: ``fit_inrs``.

Up to ``chunk_size`` INRs are one batched computation: batched matmuls over [n_inrs, ...]
parameter tensors with a hand-written backward (``batched_siren``) and one Adam update over a
row-major [n_inrs, P] buffer with per-row step counts. An INR that reaches the target PSNR is
frozen (its parameters from the step that reached it are kept) and leaves the batch; the next
INR in the queue takes its place, so the batch stays full.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor
from tqdm.auto import tqdm

from gmn.data.batched_siren import Params, Workspace, init_params, mse_and_grads
from gmn.models.siren import SirenLayout
from gmn.seeding import derive_seed

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
    """Fit one INR per (image_index[n], view[n]) pair; image_ids [n] are the seeding ids.

    At most ``chunk_size`` INRs are fitted at once; an INR that finishes makes room for the next
    one, so the batch stays full while its members converge at different speeds.
    """
    _check_images(images, recipe.layout)
    if image_index.numel() == 0:
        raise ValueError("fit_inrs got no images to fit")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    seeds = inr_seeds(recipe, seed, image_ids, view)
    height, width = images.shape[-2:]
    count = len(seeds)
    shapes = recipe.layout.shapes()
    final = torch.empty(count, sum(math.prod(s) for s in shapes.values()))
    psnr = torch.empty(count)
    steps = torch.empty(count, dtype=torch.long)
    pool = _Pool(recipe, height, width, device)
    queued = 0
    with tqdm(total=count, desc="fitting INRs", unit="INR", disable=not progress) as bar:
        while queued < count or pool.size:
            if pool.size < chunk_size and queued < count:
                new = torch.arange(queued, min(queued + chunk_size - pool.size, count))
                targets = images[image_index[new]].flatten(2).transpose(1, 2)  # [n, H*W, C]
                pool.add(new, init_params(recipe.layout, [seeds[i] for i in new]), targets)
                queued += new.numel()
            rows, params, quality = pool.step()
            if rows.numel():
                final[rows], psnr[rows], steps[rows] = params.cpu(), quality.cpu(), pool.last_steps
                bar.update(rows.numel())
    offsets = torch.tensor([0, *[math.prod(s) for s in shapes.values()]]).cumsum(0).tolist()
    return FitResult(
        params={k: final[:, a:b].reshape(count, *s).clone()
                for (k, s), a, b in zip(shapes.items(), offsets[:-1], offsets[1:])},
        psnr=psnr,
        steps=steps,
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


class _Pool:
    """The INRs being fitted: row-major [B, P] parameters and Adam moments, per-row step counts.

    Every operation is row-wise, so an INR's trajectory does not depend on its neighbours.
    """

    def __init__(self, recipe: FitRecipe, height: int, width: int, device):
        self.recipe, self.height, self.width = recipe, height, width
        self.device = torch.device(device)
        self.shapes = recipe.layout.shapes()
        total = sum(math.prod(s) for s in self.shapes.values())
        self.inr = torch.empty(0, dtype=torch.long)  # which INR each row fits
        self.params = torch.empty(0, total, device=self.device)
        self.exp_avg = torch.empty(0, total, device=self.device)
        self.exp_avg_sq = torch.empty(0, total, device=self.device)
        self.taken = torch.empty(0, dtype=torch.long, device=self.device)  # Adam steps taken
        self.targets = torch.empty(0, height * width, recipe.layout.out_features, device=device)
        self.last_steps = torch.empty(0, dtype=torch.long)
        self.workspace = Workspace()

    @property
    def size(self) -> int:
        return self.inr.numel()

    def add(self, inrs: Tensor, init: Params, targets: Tensor) -> None:
        flat = torch.cat([v.reshape(len(inrs), -1) for v in init.values()], dim=1).to(self.device)
        self.inr = torch.cat([self.inr, inrs])
        self.params = torch.cat([self.params, flat])
        self.exp_avg = torch.cat([self.exp_avg, torch.zeros_like(flat)])
        self.exp_avg_sq = torch.cat([self.exp_avg_sq, torch.zeros_like(flat)])
        self.taken = torch.cat([self.taken, self.taken.new_zeros(len(inrs))])
        targets = targets.to(device=self.device, dtype=torch.float32)
        self.targets = torch.cat([self.targets, targets])

    def _views(self, flat: Tensor) -> Params:
        out, offset = {}, 0
        for key, shape in self.shapes.items():
            size = math.prod(shape)
            out[key] = flat[:, offset : offset + size].view(flat.shape[0], *shape)
            offset += size
        return out

    def step(self) -> tuple[Tensor, Tensor, Tensor]:
        """Evaluate every row; rows that reached the target PSNR or the step limit leave the
        pool; the others take one Adam step. Returns the leaving INRs, their parameters
        [n, P] (as evaluated) and PSNRs [n]; their step counts are in ``last_steps``."""
        recipe = self.recipe
        params, targets = self.params, self.targets
        if self.size == 1:  # a batched matmul over one matrix takes another kernel
            params, targets = params.repeat(2, 1), targets.repeat(2, 1, 1)
        mse, grads = mse_and_grads(
            recipe.layout, self._views(params), self.height, self.width, targets, self.workspace
        )
        quality = psnr_from_mse(mse[: self.size])
        done = self.taken >= recipe.steps
        if recipe.target_psnr is not None:
            done |= quality >= recipe.target_psnr
        leaving = done.nonzero().squeeze(1)
        result = (self.inr[leaving.cpu()], self.params[leaving], quality[leaving])
        self.last_steps = self.taken[leaving].cpu()
        grad = torch.cat([grads[k][: self.size].reshape(self.size, -1) for k in self.shapes], 1)
        if leaving.numel():
            kept = (~done).nonzero().squeeze(1)
            self.inr = self.inr[kept.cpu()]
            for name in ("params", "exp_avg", "exp_avg_sq", "taken", "targets"):
                setattr(self, name, getattr(self, name)[kept])
            grad = grad[kept]
        self._adam(grad)
        return result

    def _adam(self, grad: Tensor) -> None:
        self.taken += 1
        adam_update(self.params, grad, self.exp_avg, self.exp_avg_sq, self.taken,
                    self.recipe.lr, self.recipe.betas, self.recipe.eps)


def adam_update(params: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor,
                steps: Tensor, lr: float | Tensor, betas: tuple[float, float], eps: float,
                weight_decay: Tensor | None = None) -> None:
    """One Adam step, in place, of B networks that each follow their own optimiser.

    Args:
        params, grad, exp_avg, exp_avg_sq: [B, ...] (the moments start at zero).
        steps: [B] steps each row has taken, this one included (its bias correction).
        lr: one learning rate, or [B] one per row.
        weight_decay: [B] L2 coefficients added to the gradient (``grad + wd·params``).
    """
    shape = (-1, *[1] * (params.dim() - 1))
    if weight_decay is not None:
        grad = grad + weight_decay.view(shape) * params
    beta1, beta2 = betas
    t = steps.view(shape).to(grad.dtype)
    exp_avg.lerp_(grad, 1.0 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
    denom = (exp_avg_sq / (1.0 - beta2**t)).sqrt_().add_(eps)
    scale = denom * (1.0 - beta1**t)
    if isinstance(lr, Tensor):
        params.addcdiv_(exp_avg, scale.div_(lr.view(shape)), value=-1.0)
    else:
        params.addcdiv_(exp_avg, scale, value=-lr)
