"""Models of Li et al. 2022: the (attention) U-Net G (sections 3.3, 3.7), the critic D and Grad-CAM (3.5, 3.7),
a ViT comparison model (Lin & Heckel 2022) and the interpolation baseline."""

from __future__ import annotations

from typing import Any

from torch import nn

from brainsr.models.critic import Critic, gradcam
from brainsr.models.identity import Identity
from brainsr.models.unet import AttentionGate, AttentionUNet, UNet
from brainsr.models.vit import ViTSR

MODELS: dict[str, type[nn.Module]] = {
    "attention_unet": AttentionUNet,
    "unet": UNet,
    "vit": ViTSR,
    "critic": Critic,
    "identity": Identity,
}


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Construct a model by name (one of :data:`MODELS`); ``kwargs`` go to its constructor."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(sorted(MODELS))}") from None
    return cls(**kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "MODELS",
    "AttentionGate",
    "AttentionUNet",
    "Critic",
    "Identity",
    "UNet",
    "ViTSR",
    "build_model",
    "count_parameters",
    "gradcam",
]
