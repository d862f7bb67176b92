"""Output layer shared by the generators: the paper's sigmoid (section 3.3), or a sigmoid residual on the input."""

from __future__ import annotations

import torch
from torch import Tensor, nn

#: Input intensities are clamped to [EPS, 1 - EPS] before the logit of the residual form.
RESIDUAL_EPS = 1e-3


def check_residual(residual: bool, in_channels: int, out_channels: int) -> None:
    """The residual form adds the input to the output, so both must have the same channels."""
    if residual and in_channels != out_channels:
        raise ValueError(f"residual output needs in_channels == out_channels, got {in_channels} and {out_channels}")


def zero_init(layer: nn.Module) -> None:
    """Zero the weights and bias of the last layer, so that a residual generator starts as the identity."""
    for p in layer.parameters():
        nn.init.zeros_(p)


def to_image(logits: Tensor, x: Tensor, residual: bool) -> Tensor:
    """Image in [0, 1]: σ(logits) (paper 3.3), or σ(logit(x) + logits) with ``residual``.

    The residual form (not in the paper) makes G learn a correction of the interpolated input in logit space;
    with a zero-initialised last layer it starts exactly at the interpolation baseline (up to the clamp of x to
    [1e-3, 1 - 1e-3]), which short CPU trainings need to get past it (README, "Super-resolution").
    """
    if not residual:
        return torch.sigmoid(logits)
    return torch.sigmoid(torch.logit(x.clamp(RESIDUAL_EPS, 1.0 - RESIDUAL_EPS)).to(logits.dtype) + logits)
