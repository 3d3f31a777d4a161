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


def one_at_a_time(images: torch.Tensor, recipe: FitRecipe, device):
    """Fit each image alone, stopping at the target PSNR. Returns (seconds, steps, psnr [N])."""
    height, width = images.shape[-2:]
    coords = image_grid(height, width, device=device)
    total_steps, psnrs = 0, []
    sync(device)
    start = time.perf_counter()
    for index, image in enumerate(images):
        torch.manual_seed(index)
        model = recipe.layout.build().to(device)
        target = image.to(device).flatten(1).T  # [H*W, C]
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, betas=recipe.betas)
        goal = float("inf") if recipe.target_psnr is None else recipe.target_psnr
        for _ in range(recipe.steps):
            loss = (model(coords) - target).square().mean()
            if psnr_from_mse(loss.detach()) >= goal:
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_steps += 1
        with torch.no_grad():
            psnrs.append(psnr_from_mse((model(coords) - target).square().mean()).item())
    sync(device)
    return time.perf_counter() - start, total_steps, torch.tensor(psnrs)


def batched(images: torch.Tensor, recipe: FitRecipe, device, chunk_size: int):
    sync(device)
    start = time.perf_counter()
    result = fit_inrs(images, recipe=recipe, chunk_size=chunk_size, device=device, progress=False)
    sync(device)
    return time.perf_counter() - start, int(result.steps.sum()), result.psnr


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
    base_s, base_steps, _ = one_at_a_time(images[: args.baseline_images], fixed, device)
    base_ms = 1e3 * base_s / base_steps
    batch_s, batch_steps, _ = batched(images, fixed, device, args.chunk_size)
    batch_ms = 1e3 * batch_s / batch_steps
    print(f"ms per INR-step, {args.fixed_steps} steps: one at a time {base_ms:.3f}, "
          f"batched (chunk {args.chunk_size}) {batch_ms:.3f}, speed-up {base_ms / batch_ms:.2f}x")

    to_target = FitRecipe(steps=args.max_steps, lr=args.lr, target_psnr=args.target_psnr)
    base_s, _, base_psnr = one_at_a_time(images[: args.baseline_images], to_target, device)
    batch_s, batch_steps, psnr = batched(images, to_target, device, args.chunk_size)
    reached = (psnr >= args.target_psnr).float().mean().item()
    print(f"to {args.target_psnr:g} dB: one at a time {args.baseline_images / base_s:.1f} INRs/s "
          f"(mean PSNR {base_psnr.mean():.2f} dB); batched {len(images) / batch_s:.1f} INRs/s, "
          f"{1e3 * batch_s / batch_steps:.3f} ms per INR-step, mean PSNR {psnr.mean():.2f} dB, "
          f"{100 * reached:.1f}% reached the target, mean steps {batch_steps / len(images):.1f}")


if __name__ == "__main__":
    main()
