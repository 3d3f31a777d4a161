"""The picture grid of the editing report: input, target and each family's edit."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from benchmarks.inr_classification.plots import _pyplot


def plot_picture_grid(rows: dict[str, Tensor], path: str | Path) -> Path:
    """One row per entry of ``rows`` (name -> [n, C, H, W] images, grey or RGB, shown on
    [0, 1]), one column per test image."""
    plt = _pyplot()
    n = min(len(images) for images in rows.values())
    fig, axes = plt.subplots(len(rows), n, figsize=(1.1 * n + 1.2, 1.1 * len(rows)),
                             squeeze=False)
    for row, (name, images) in zip(axes, rows.items()):
        for ax, image in zip(row, images[:n]):
            picture = image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
            ax.imshow(picture.squeeze(-1) if picture.shape[-1] == 1 else picture,
                      cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
