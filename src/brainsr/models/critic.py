"""Critic D and Grad-CAM activation maps (Li et al. 2022, sections 3.5 and 3.7).

The critic follows the DCGAN discriminator (Radford et al. 2015): 4 blocks of a 4×4, stride-2 convolution, an
activation and dropout (rate 0.5 against over-fitting, section 3.5), then a 1-filter convolution, a flatten and
a dense layer to one scalar, squashed to the critic score in [0, 1] by a sigmoid. Grad-CAM (Selvaraju et al.
2017) of that score shows which image regions drive it (section 3.7).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brainsr.models.unet import Activation, make_activation


class Critic(nn.Module):
    """DCGAN-like critic D (paper section 3.5) returning a score of shape (N, 1) in [0, 1].

    Args:
        in_channels: input channels.
        filters: filters of the first block; doubled in each following block (DCGAN).
        n_blocks: number of (conv 4×4 stride 2 → activation → dropout) blocks (4 in the paper).
        activation: ``"leakyrelu"``, ``"relu"`` or ``"gelu"``.
        dropout: dropout rate after each block (0.5 in the paper).
        pooled_size: the 1-channel map is adaptively average-pooled to ``pooled_size``² values before the dense
            layer, so that any input size works without lazy modules.

    Inputs smaller than ``2**n_blocks`` pixels per side (e.g. the paper's 8 x 8 patches) are zero-padded to that
    size, the smallest on which every strided block still sees a 4 x 4 window.
    """

    def __init__(
        self,
        in_channels: int = 3,
        filters: int = 64,
        n_blocks: int = 4,
        activation: Activation = "leakyrelu",
        dropout: float = 0.5,
        pooled_size: int = 8,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        blocks: list[nn.Module] = []
        channels = in_channels
        for i in range(n_blocks):
            width = filters * 2**i
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(channels, width, kernel_size=4, stride=2, padding=1),
                    make_activation(activation),
                    nn.Dropout(dropout),
                )
            )
            channels = width
        self.blocks = nn.Sequential(*blocks)
        self.compress = nn.Conv2d(channels, 1, kernel_size=3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(pooled_size)
        self.dense = nn.Linear(pooled_size * pooled_size, 1)

    def forward(self, x: Tensor) -> Tensor:
        side = 2 ** len(self.blocks)
        dh, dw = max(0, side - x.shape[-2]), max(0, side - x.shape[-1])
        if dh or dw:
            x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
        h = self.pool(self.compress(self.blocks(x)))
        return torch.sigmoid(self.dense(h.flatten(1)))


def gradcam(critic: Critic, x: Tensor, layer: nn.Module | None = None) -> Tensor:
    """Grad-CAM (Selvaraju et al. 2017) of the critic score w.r.t. ``layer``'s output (paper section 3.7).

    ``layer`` defaults to the last strided convolutional block of ``critic``. Channel weights are the spatial
    means of the score's gradients, ``cam = relu(sum_k w_k A_k)`` is bilinearly upsampled to the input size and
    normalised per sample to [0, 1] (all zeros where its maximum is 0). Returns (N, 1, H, W).

    The critic is run in its current mode (call ``critic.eval()`` first for a deterministic map). Works inside
    ``torch.no_grad()``; removes its hook and leaves the parameters' ``.grad`` untouched (it uses
    :func:`torch.autograd.grad`, which does not accumulate into ``.grad``).
    """
    if layer is None:
        layer = critic.blocks[-1]
    captured: list[Tensor] = []

    def hook(_module: nn.Module, _inputs: tuple[Tensor, ...], output: Tensor) -> None:
        captured.append(output)

    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            inputs = x.detach().requires_grad_(True)
            score = critic(inputs)
            if not captured:
                raise RuntimeError("the Grad-CAM layer was not called in the critic's forward pass")
            activations = captured[-1]
            (grads,) = torch.autograd.grad(score.sum(), activations)
    finally:
        handle.remove()
    with torch.no_grad():
        weights = grads.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * activations.detach()).sum(dim=1, keepdim=True))
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
        peak = cam.flatten(1).amax(dim=1).view(-1, 1, 1, 1)
        cam = torch.where(peak > 0, cam / peak.clamp_min(torch.finfo(cam.dtype).tiny), torch.zeros_like(cam))
    return cam.clamp(0, 1)
