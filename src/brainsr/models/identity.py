"""Interpolation baseline (Li et al. 2022, section 4: super-resolved vs. interpolated scans)."""

from __future__ import annotations

from torch import Tensor, nn


class Identity(nn.Module):
    """The "interpolation" baseline: returns the resampled clinical scan unchanged, clamped to [0, 1].

    It has no parameters; it only lets the interpolated input flow through the same inference and evaluation
    code as the learned models (it cannot be trained).
    """

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = in_channels

    def forward(self, x: Tensor) -> Tensor:
        return x.clamp(0.0, 1.0)
