"""U-Net and attention U-Net super-resolution models (Li et al. 2022, sections 3.3 and 3.7).

The up-sampling model G is a 2D U-Net (Ronneberger et al. 2015): an encoder of convolutional blocks and 2×2
max-pooling, a mirrored decoder of stride-2 transposed convolutions, skip connections concatenated in the
channel dimension, and a sigmoid on the output so that it matches the [0, 1] input range (section 3.3).
With ``attention=True`` an additive attention gate (Oktay et al. 2018) weights each skip connection before the
concatenation (section 3.7); the learned sigmoid masks are kept for visualisation.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brainsr.models.output import check_residual, to_image, zero_init

Norm = Literal["instance", "batch", "none"]
Activation = Literal["leakyrelu", "relu", "gelu"]

_NORMS = ("instance", "batch", "none")
_ACTIVATIONS = ("leakyrelu", "relu", "gelu")


class InstanceNorm(nn.GroupNorm):
    """Instance normalisation with a learned scale and shift per channel (section 3.3).

    Same statistics and parameters (``weight``, ``bias``) as ``nn.InstanceNorm2d(affine=True)``: one group per
    channel of GroupNorm normalises each sample's channel over its H × W pixels. GroupNorm has a native
    channels-last CPU kernel; InstanceNorm2d copies channels-last input to NCHW and back (4× slower here).
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__(channels, channels, eps=eps, affine=True)


def make_norm(name: str, channels: int) -> nn.Module:
    """Normalisation layer by name (section 3.3 uses instance normalisation)."""
    if name == "instance":
        return InstanceNorm(channels)
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {name!r}; expected one of {_NORMS}")


def make_activation(name: str) -> nn.Module:
    """Activation layer by name (section 3.3 uses LeakyReLU)."""
    if name == "leakyrelu":
        return nn.LeakyReLU(0.2, inplace=True)
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "gelu":
        return nn.GELU()
    raise ValueError(f"unknown activation {name!r}; expected one of {_ACTIVATIONS}")


class ConvBlock(nn.Sequential):
    """Convolutional block: 2 × (3×3 convolution, stride 1 → normalisation → activation [→ dropout]).

    Section 3.3 describes one convolution + normalisation + activation per block; as in the standard U-Net
    (Ronneberger et al. 2015), whose recommendations the paper follows, the unit is applied twice per level,
    which gives the ≈31 M parameters of the 64-filter attention model.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: Norm, activation: Activation, dropout: float) -> None:
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(2):
            layers += [
                nn.Conv2d(channels, out_channels, kernel_size=3, stride=1, padding=1, bias=norm != "batch"),
                make_norm(norm, out_channels),
                make_activation(activation),
            ]
            if dropout > 0:
                layers.append(nn.Dropout2d(dropout))
            channels = out_channels
        super().__init__(*layers)


class AttentionGate(nn.Module):
    """Additive attention gate (Oktay et al. 2018; paper section 3.7).

    ``alpha = sigmoid(psi(relu(W_g g + W_x x)))`` where ``g`` is the gating signal from the coarser decoder level
    and ``x`` the skip connection. ``W_g g`` is computed at the coarse resolution and bilinearly resampled to the
    skip's spatial size, so the mask ``alpha`` (N, 1, H, W) has the skip's size. Returns ``(x * alpha, alpha)``.
    """

    def __init__(self, gate_channels: int, skip_channels: int, inter_channels: int) -> None:
        super().__init__()
        self.w_g = nn.Conv2d(gate_channels, inter_channels, kernel_size=1, bias=True)
        self.w_x = nn.Conv2d(skip_channels, inter_channels, kernel_size=1, bias=False)
        self.psi = nn.Conv2d(inter_channels, 1, kernel_size=1, bias=True)

    def forward(self, g: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        gated = self.w_g(g)
        if gated.shape[-2:] != x.shape[-2:]:
            gated = F.interpolate(gated, size=x.shape[-2:], mode="bilinear", align_corners=False)
        alpha = torch.sigmoid(self.psi(F.relu(gated + self.w_x(x))))
        return x * alpha, alpha


def pad_to_match(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Zero-pad the spatially smaller of ``a`` and ``b`` (per dimension) so both have the same H, W (section 3.3)."""
    height = max(a.shape[-2], b.shape[-2])
    width = max(a.shape[-1], b.shape[-1])

    def pad(t: Tensor) -> Tensor:
        dh, dw = height - t.shape[-2], width - t.shape[-1]
        if dh == 0 and dw == 0:
            return t
        return F.pad(t, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))

    return pad(a), pad(b)


class UNet(nn.Module):
    """2D U-Net super-resolution model G (paper section 3.3), optionally with attention gates (section 3.7).

    Args:
        in_channels: input channels (3 = FLAIR, T1-, T2-weighted slices input simultaneously, section 3.2).
        out_channels: output channels.
        filters: filters of the first block; doubled at each of the ``depth`` down-sampling steps.
        depth: number of down-/up-sampling block pairs (4 in the paper).
        norm: ``"instance"`` (paper), ``"batch"`` or ``"none"``.
        activation: ``"leakyrelu"`` (paper), ``"relu"`` or ``"gelu"``.
        dropout: dropout rate after each activation (0 disables it).
        attention: add an attention gate on every skip connection (the attention U-Net of section 3.7).
        residual: output σ(logit(x) + head) instead of σ(head), with a zero-initialised head, so that the network
            starts as the identity on its input (not in the paper; see :func:`brainsr.models.output.to_image`).

    ``forward(x)`` returns the image in [0, 1] with the spatial size of ``x`` (odd sizes are handled by zero
    padding before each concatenation). With attention, the masks of the last forward pass are in
    ``self.attention_maps`` (coarse to fine, each at its skip's spatial size), or returned by
    ``forward(x, return_attention=True)``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        filters: int = 64,
        depth: int = 4,
        norm: Norm = "instance",
        activation: Activation = "leakyrelu",
        dropout: float = 0.0,
        attention: bool = False,
        residual: bool = False,
    ) -> None:
        super().__init__()
        check_residual(residual, in_channels, out_channels)
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if norm not in _NORMS:
            raise ValueError(f"unknown norm {norm!r}; expected one of {_NORMS}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of {_ACTIVATIONS}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.filters = filters
        self.depth = depth
        self.attention = attention
        self.residual = residual
        widths = [filters * 2**i for i in range(depth + 1)]

        self.inc = ConvBlock(in_channels, widths[0], norm, activation, dropout)
        self.down = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), ConvBlock(widths[i], widths[i + 1], norm, activation, dropout))
            for i in range(depth)
        )
        # Decoder, coarse to fine: level i goes from widths[i + 1] to widths[i], for i = depth - 1 .. 0.
        levels = list(reversed(range(depth)))
        self.upsample = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], kernel_size=2, stride=2) for i in levels
        )
        self.up_blocks = nn.ModuleList(ConvBlock(2 * widths[i], widths[i], norm, activation, dropout) for i in levels)
        self.gates = (
            nn.ModuleList(AttentionGate(widths[i + 1], widths[i], max(widths[i] // 2, 1)) for i in levels)
            if attention
            else None
        )
        self.head = nn.Conv2d(widths[0], out_channels, kernel_size=1)
        if residual:
            zero_init(self.head)
        self.attention_maps: list[Tensor] = []

    def forward(self, x: Tensor, return_attention: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        skips = [self.inc(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        h = skips.pop()
        masks: list[Tensor] = []
        for k, (upsample, block) in enumerate(zip(self.upsample, self.up_blocks, strict=True)):
            skip = skips.pop()
            if self.gates is not None:
                skip, alpha = self.gates[k](h, skip)
                masks.append(alpha)
            up, skip = pad_to_match(upsample(h), skip)
            h = block(torch.cat([skip, up], dim=1))
        self.attention_maps = masks
        y = to_image(self.head(h), x, self.residual)
        if return_attention:
            return y, masks
        return y


class AttentionUNet(UNet):
    """Attention U-Net (paper section 3.7): :class:`UNet` with an additive attention gate on every skip.

    Takes the same hyper-parameters as :class:`UNet` (``attention`` is always on).
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        if kwargs.pop("attention", True) is not True:
            raise ValueError("AttentionUNet always has attention gates; use UNet for the vanilla network")
        super().__init__(*args, attention=True, **kwargs)
