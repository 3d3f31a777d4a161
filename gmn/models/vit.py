"""A small Vision Transformer for small grey or colour images (8×8 to 32×32)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ViT(nn.Module):
    """Patch embedding, a class token, learned positions, pre-norm transformer blocks.

    Args:
        in_shape: (C, H, W) of the images; H and W must be multiples of ``patch_size``.
        num_classes: number of classes.
        patch_size: side of the square patches.
        dim: token width.
        depth: number of transformer blocks.
        heads: attention heads (must divide ``dim``).
        mlp_ratio: hidden width of each block's MLP, as a multiple of ``dim``.
        dropout: dropout inside the blocks.

    Shapes: ``forward`` maps [B, C, H, W] to [B, num_classes] logits. Blocks are
    ``blocks.0``, … (outputs [B, 1 + H·W/patch², dim]), the class token after the final
    norm is ``norm`` ([B, dim] after ``forward`` selects it) and the head is ``head``.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int,
        patch_size: int = 2,
        dim: int = 64,
        depth: int = 3,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
    ):
        super().__init__()
        channels, height, width = in_shape
        if height % patch_size or width % patch_size:
            raise ValueError(
                f"image size {height}x{width} is not a multiple of patch_size={patch_size}"
            )
        if dim % heads:
            raise ValueError(f"heads={heads} must divide dim={dim}")
        num_patches = (height // patch_size) * (width // patch_size)
        self.patch_embed = nn.Conv2d(channels, dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, num_patches + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                dim,
                heads,
                int(dim * mlp_ratio),
                dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, images: Tensor) -> Tensor:
        tokens = self.patch_embed(images).flatten(2).transpose(1, 2)  # [B, P, dim]
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        h = torch.cat([cls, tokens], dim=1) + self.pos_embed
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h[:, 0]))
