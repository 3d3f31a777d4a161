"""Benchmark SIREN fitting: one INR at a time (autograd + torch.optim.Adam) vs ``fit_inrs``.

Prints ms per INR-step for both, the speed-up, and INRs/s to the target PSNR (default 30 dB)
with the mean PSNR reached. Images: 28×28 MNIST from ``--root`` (idx files), else scikit-learn
digits resized to 28×28.

    OMP_NUM_THREADS=2 python benchmarks/fit.py --root ../shared/data/mnist-test-half
    python benchmarks/fit.py --device cuda --num-images 4096 --chunk-size 4096
"""

from __future__ import annotations

import argparse
import time

import torch

from gmn.data.fit import FitRecipe, fit_inrs, psnr_from_mse
from gmn.data.idx import load_mnist
from gmn.data.images import load_digits
from gmn.models.siren import image_grid


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Clock:
    """Wall time, and CPU time of this process (closer to the idle-machine cost under load)."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self):
        sync(self.device)
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        sync(self.device)
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def one_at_a_time(images: torch.Tensor, recipe: FitRecipe, device):
    """Fit each image alone, stopping at the target PSNR. Returns (Clock, steps, psnr [N])."""
    height, width = images.shape[-2:]
    coords = image_grid(height, width, device=device)
    total_steps, psnrs = 0, []
    with Clock(device) as clock:
        for index, image in enumerate(images):
            total_steps += fit_one(image, index, recipe, coords, device, psnrs)
    return clock, total_steps, torch.tensor(psnrs)


def fit_one(image, index, recipe, coords, device, psnrs) -> int:
    """One INR with autograd and ``torch.optim.Adam``; appends its PSNR, returns its steps."""
    torch.manual_seed(index)
    model = recipe.layout.build().to(device)
    target = image.to(device).flatten(1).T  # [H*W, C]
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, betas=recipe.betas)
    goal = float("inf") if recipe.target_psnr is None else recipe.target_psnr
    steps = 0
    for _ in range(recipe.steps):
        loss = (model(coords) - target).square().mean()
        if psnr_from_mse(loss.detach()) >= goal:
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        steps += 1
    with torch.no_grad():
        psnrs.append(psnr_from_mse((model(coords) - target).square().mean()).item())
    return steps


def batched(images: torch.Tensor, recipe: FitRecipe, device, chunk_size: int):
    with Clock(device) as clock:
        result = fit_inrs(images, recipe=recipe, chunk_size=chunk_size, device=device,
                          progress=False)
    return clock, int(result.steps.sum()), result.psnr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--root", default=None, help="folder with MNIST idx files")
    parser.add_argument("--num-images", type=int, default=512)
    parser.add_argument("--baseline-images", type=int, default=16)
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--target-psnr", type=float, default=30.0)
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--fixed-steps", type=int, default=50, help="steps for the ms/INR-step")
    args = parser.parse_args()
    device = torch.device(args.device)

    if args.root:
        images = load_mnist(args.root, split="test", download=False).images
    else:
        images = load_digits(28).images
    images = images[: args.num_images]
    print(f"device {device}, torch threads {torch.get_num_threads()}, images {tuple(images.shape)}")

    fixed = FitRecipe(steps=args.fixed_steps, lr=args.lr, target_psnr=None)
    one_at_a_time(images[:2], fixed, device)  # warm-up: first calls allocate and dispatch
    batched(images[:8], fixed, device, args.chunk_size)
    base, base_steps, _ = one_at_a_time(images[: args.baseline_images], fixed, device)
    fast, fast_steps, _ = batched(images, fixed, device, args.chunk_size)
    wall_gain = (base.wall / base_steps) / (fast.wall / fast_steps)
    cpu_gain = (base.cpu / base_steps) / (fast.cpu / fast_steps)
    print(f"ms per INR-step, {args.fixed_steps} steps (wall / CPU time): "
          f"one at a time {per_step(base, base_steps)}; batched (chunk {args.chunk_size}) "
          f"{per_step(fast, fast_steps)}; speed-up {wall_gain:.2f}x wall, {cpu_gain:.2f}x CPU")

    to_target = FitRecipe(steps=args.max_steps, lr=args.lr, target_psnr=args.target_psnr)
    base, _, base_psnr = one_at_a_time(images[: args.baseline_images], to_target, device)
    fast, fast_steps, psnr = batched(images, to_target, device, args.chunk_size)
    reached = (psnr >= args.target_psnr).float().mean().item()
    print(f"to {args.target_psnr:g} dB (wall / CPU time): one at a time "
          f"{args.baseline_images / base.wall:.1f} / {args.baseline_images / base.cpu:.1f} INRs/s, "
          f"mean PSNR {base_psnr.mean():.2f} dB; batched {len(images) / fast.wall:.1f} / "
          f"{len(images) / fast.cpu:.1f} INRs/s, {per_step(fast, fast_steps)} ms per INR-step, "
          f"mean PSNR {psnr.mean():.2f} dB, {100 * reached:.1f}% reached the target, "
          f"mean steps {fast_steps / len(images):.1f}")


def per_step(clock: Clock, steps: int) -> str:
    return f"{1e3 * clock.wall / steps:.3f} / {1e3 * clock.cpu / steps:.3f}"


if __name__ == "__main__":
    main()
