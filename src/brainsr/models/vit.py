"""Vision-transformer super-resolution baseline after Lin & Heckel 2022.

"Vision transformers enable fast and robust accelerated MRI" (MIDL 2022) replace the U-Net of image-to-image
MRI reconstruction with a ViT: non-overlapping patch embedding, a learned positional embedding, a stack of
pre-norm transformer encoder blocks and a linear map from each token back to its patch's pixels. Here it is a
comparison model for the U-Net G of Li et al. 2022 (section 3.3), with the same [0, 1] sigmoid output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brainsr.models.output import check_residual, to_image, zero_init

_DEFAULT_GRID = (16, 16)


class ViTSR(nn.Module):
    """Patch-based vision transformer mapping an (N, C, H, W) image to an (N, out_channels, H, W) image.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        image_size: (H, W) the positional embedding is built for; other sizes bilinearly interpolate the
            embedding grid. ``None`` builds a 16×16-token grid and always interpolates.
        patch_size: side of the square, non-overlapping patches (tokens).
        embed_dim: token dimension.
        depth: number of transformer encoder blocks.
        heads: attention heads per block.
        mlp_ratio: hidden size of each block's MLP relative to ``embed_dim``.
        dropout: dropout rate inside the transformer blocks.
        residual: σ(logit(x) + output) with a zero-initialised un-patching layer (see
            :func:`brainsr.models.output.to_image`; not in Lin & Heckel or Li et al.).

    Inputs whose sides are not multiples of ``patch_size`` are reflect-padded (zero-padded where too small to
    reflect) and the output is cropped back.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        image_size: tuple[int, int] | None = (144, 144),
        patch_size: int = 8,
        embed_dim: int = 256,
        depth: int = 6,
        heads: int = 8,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        residual: bool = False,
    ) -> None:
        super().__init__()
        check_residual(residual, in_channels, out_channels)
        if embed_dim % heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by heads ({heads})")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.patch_size = patch_size
        self.residual = residual
        self.image_size = image_size
        if image_size is None:
            grid = _DEFAULT_GRID
        else:
            grid = (-(-image_size[0] // patch_size), -(-image_size[1] // patch_size))
        self.patch_embed = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_dim, *grid))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model=embed_dim,
            nhead=heads,
            dim_feedforward=round(embed_dim * mlp_ratio),
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(embed_dim)
        self.unpatch = nn.Linear(embed_dim, out_channels * patch_size * patch_size)
        if residual:
            zero_init(self.unpatch)

    def _positional(self, grid: tuple[int, int]) -> Tensor:
        pos = self.pos_embed
        if tuple(pos.shape[-2:]) != grid:
            pos = F.interpolate(pos, size=grid, mode="bilinear", align_corners=False)
        return pos

    def forward(self, x: Tensor) -> Tensor:
        source = x
        n, _, height, width = x.shape
        p = self.patch_size
        pad_h, pad_w = (-height) % p, (-width) % p
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "constant"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        tokens = self.patch_embed(x)  # (N, D, gh, gw)
        gh, gw = tokens.shape[-2:]
        tokens = tokens + self._positional((gh, gw))
        tokens = tokens.flatten(2).transpose(1, 2)  # (N, gh*gw, D)
        tokens = self.norm(self.encoder(tokens))
        patches = self.unpatch(tokens)  # (N, gh*gw, C*p*p)
        patches = patches.view(n, gh, gw, self.out_channels, p, p)
        image = patches.permute(0, 3, 1, 4, 2, 5).reshape(n, self.out_channels, gh * p, gw * p)
        return to_image(image[..., :height, :width], source, self.residual)
