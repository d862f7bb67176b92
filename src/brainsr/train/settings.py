"""Settings of one super-resolution experiment (paper 3.2-3.5, 4; Table S1) and the choice of device/precision."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["GENERATORS", "TrainSettings", "autocast_dtype"]

#: Trainable generators (the interpolation baseline, ``identity``, has nothing to train).
GENERATORS = ("attention_unet", "unet", "vit")


@dataclass(frozen=True)
class TrainSettings:
    """One experiment: model, data mode, objective and optimisation (the keys of ``superres.experiments``).

    Attributes mirror the paper's hyper-parameters: ``filters`` of the first U-Net block (64 in the paper, 4.1.4),
    ``depth`` (4 down/up pairs), ``loss`` (3.4: ``mae``, ``mse``, ``bce``, ``ssim`` or a weighted sum such as
    ``"0.8*mae+0.2*ssim"``), ``critic`` (train the critic D, 3.5), ``critic_lambda`` (λ of eq. 2; 0 still trains
    D, for Grad-CAM, as the paper does, 4.3), ``critic_steps`` (D updates per G update, 5), ``input``
    (``slices`` | ``patches``, 3.2), ``channels`` (``multi`` | ``single``, 4.1.1). ``residual`` (not in the paper)
    makes G correct its interpolated input instead of producing the image from scratch.
    """

    model: str = "attention_unet"
    prep: str = "affinelinear"
    input: str = "slices"
    channels: str = "multi"
    axis: str = "axial"
    pad: str | int = 16
    patch_size: int = 64
    patches_per_scan: int = 1000
    patch_sampler: str = "weighted"
    patch_overlap: int = 32
    filters: int = 16
    depth: int = 4
    norm: str = "instance"
    activation: str = "leakyrelu"
    dropout: float = 0.0
    residual: bool = False
    vit: Mapping[str, Any] = field(default_factory=lambda: {"patch_size": 8, "embed_dim": 128, "depth": 4, "heads": 4})
    loss: str = "mae"
    critic: bool = True
    critic_lambda: float = 0.0
    critic_steps: int = 5
    critic_filters: int = 16
    critic_lr: float = 1e-4
    epochs: int = 10
    samples_per_epoch: int | None = None
    batch_size: int = 8
    lr: float = 1e-3
    lr_schedule: str = "cosine"
    weight_decay: float = 0.0
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    seed: int = 2022
    skip_empty_slices: bool = True
    val_stride: int = 2
    val_samples: int | None = None
    image_every: int = 1

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TrainSettings:
        """Build from a config mapping; unknown keys raise ``ValueError`` naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown experiment setting(s) {unknown}; valid: {sorted(names)}")
        settings = cls(**dict(values))
        settings.check()
        return settings

    def check(self) -> None:
        """Raise ``ValueError`` on values no run could use."""
        if self.model not in GENERATORS:
            raise ValueError(f"model must be one of {GENERATORS}, got {self.model!r}")
        if self.input not in ("slices", "patches"):
            raise ValueError(f"input must be 'slices' or 'patches', got {self.input!r}")
        if self.channels not in ("multi", "single"):
            raise ValueError(f"channels must be 'multi' or 'single', got {self.channels!r}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        if self.lr_schedule not in ("cosine", "step", "none"):
            raise ValueError(f"lr_schedule must be cosine, step or none, got {self.lr_schedule!r}")
        if self.critic_lambda < 0 or self.critic_lambda > 1:
            raise ValueError(f"critic_lambda is in [0, 1] (paper eq. 2), got {self.critic_lambda}")
        if self.critic_lambda > 0 and not self.critic:
            raise ValueError("critic_lambda > 0 needs critic: true")
        for name in ("epochs", "batch_size", "filters", "depth", "critic_steps", "patch_size", "patches_per_scan"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("samples_per_epoch", "val_samples"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise ValueError(f"{name} must be >= 1 or null, got {value}")

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["vit"] = dict(self.vit)
        return out

    def model_kwargs(self, channels: int, image_size: tuple[int, int]) -> dict[str, Any]:
        """Constructor arguments of the generator for ``channels`` input/output channels."""
        if self.model == "vit":
            vit = dict(self.vit)
            return {
                "in_channels": channels,
                "out_channels": channels,
                "image_size": list(image_size),
                "patch_size": int(vit.get("patch_size", 8)),
                "embed_dim": int(vit.get("embed_dim", 128)),
                "depth": int(vit.get("depth", 4)),
                "heads": int(vit.get("heads", 4)),
                "residual": self.residual,
            }
        return {
            "in_channels": channels,
            "out_channels": channels,
            "filters": self.filters,
            "depth": self.depth,
            "norm": self.norm,
            "activation": self.activation,
            "dropout": self.dropout,
            "residual": self.residual,
        }

    def critic_kwargs(self, channels: int) -> dict[str, Any]:
        """Critic D (paper 3.5): 4 blocks, dropout 0.5."""
        return {"in_channels": channels, "filters": self.critic_filters, "n_blocks": 4, "dropout": 0.5}


def autocast_dtype(precision: str) -> torch.dtype | None:
    """Autocast dtype of a resolved precision (paper 3.9): None for fp32, else bf16 or fp16.

    ``auto`` is resolved before, by :func:`brainsr.train.precision.choose_precision` (measured on CPUs).
    """
    dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        raise ValueError(f"precision must be resolved to fp32, bf16 or fp16 (choose_precision), got {precision!r}")
    return dtypes[precision]
