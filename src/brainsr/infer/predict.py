"""Whole-scan super-resolution with a trained generator (paper 3.6) and the maps that explain it (3.7).

Slice models upsample every slice along the training axis in batches; patch models run TorchIO's grid
sampler with overlapping patches blended by a Hann window (or averaged). On CPU the generator runs under bf16
autocast with channels-last tensors, optionally compiled, with denormals flushed to zero (denormal weights of
trained networks slow CPUs down); outputs are float32 in [0, 1].
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from brainsr.data import crop_hw, from_slices, pad_hw, padded_size, predict_patches, to_slices
from brainsr.train.precision import PrecisionChoice, choose_precision, model_size_key
from brainsr.train.settings import autocast_dtype

log = logging.getLogger("brainsr.infer")

__all__ = ["InferenceSettings", "explain_slices", "prepare_for_inference", "upsample_volume"]


@dataclass(frozen=True)
class InferenceSettings:
    """How to run a generator on a volume; ``from_meta`` reads the training choices from a model file."""

    axis: str = "axial"
    pad: str | int = 16
    input: str = "slices"
    channels_mode: str = "multi"
    patch_size: int = 64
    patch_overlap: int = 32
    overlap_mode: str = "hann"
    batch_size: int = 16
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False

    @classmethod
    def from_meta(cls, data: dict[str, Any], **overrides: Any) -> InferenceSettings:
        keys = ("axis", "pad", "input", "channels_mode", "patch_size", "patch_overlap")
        values = {k: data[k] for k in keys if k in data}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def inference_precision(
    generator: nn.Module, volume: np.ndarray, settings: InferenceSettings, device: torch.device
) -> PrecisionChoice:
    """Resolve ``settings.precision`` (``auto``: measured, :mod:`brainsr.train.precision`) for this model and scan:
    the probe runs the generator on a batch of the scan's padded slice (or patch) size."""
    torch.set_flush_denormal(True)  # before any timing: trained weights run slowly on denormals
    channels = 1 if settings.channels_mode == "single" else int(volume.shape[0])
    if settings.input == "patches":
        size = (settings.patch_size, settings.patch_size)
    else:
        size = padded_size(to_slices(volume[:1], settings.axis).shape[-2:], settings.pad)
    sample = torch.rand(settings.batch_size, channels, *size, generator=torch.Generator().manual_seed(0))
    key = model_size_key(generator, sample)
    return choose_precision(
        settings.precision, device, model_key=key, build=lambda: generator, sample=sample, train=False
    )


def prepare_for_inference(
    generator: nn.Module, device: torch.device, settings: InferenceSettings
) -> tuple[nn.Module, Any]:
    """Generator on ``device`` in eval mode (channels-last, optionally compiled) and its autocast context factory."""
    torch.set_flush_denormal(True)
    generator = generator.eval().to(device)
    if settings.channels_last:
        generator = generator.to(memory_format=torch.channels_last)
    runnable = torch.compile(generator, dynamic=False) if settings.compile else generator
    dtype = autocast_dtype(settings.precision)

    def autocast() -> Any:
        return nullcontext() if dtype is None else torch.autocast(device_type=device.type, dtype=dtype)

    return runnable, autocast


def _run(fn: nn.Module, autocast: Any, x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), autocast():
        return fn(x).float().cpu()


def upsample_volume(
    generator: nn.Module,
    volume: np.ndarray,
    settings: InferenceSettings,
    device: torch.device | str = "cpu",
    *,
    mask: np.ndarray | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Upsample a (C, X, Y, Z) scan set in [0, 1] on the template grid; returns (C, X, Y, Z) float32 in [0, 1].

    Single-channel models (``channels_mode="single"``) run once per sequence. ``mask`` (X, Y, Z), when given,
    zeroes the output outside the (clinical) brain mask, as the inputs and targets are brain-extracted.
    """
    from tqdm import tqdm

    device = torch.device(device)
    settings = replace(settings, precision=inference_precision(generator, volume, settings, device).precision)
    fn, autocast = prepare_for_inference(generator, device, settings)
    groups: Sequence[slice] = (
        [slice(c, c + 1) for c in range(volume.shape[0])] if settings.channels_mode == "single" else [slice(None)]
    )
    out = np.zeros_like(volume, dtype=np.float32)
    for group in groups:
        part = volume[group]
        if settings.input == "patches":

            def predict(x: torch.Tensor) -> torch.Tensor:
                return _run(fn, autocast, x, device, settings.channels_last)

            out[group] = predict_patches(
                predict,
                part,
                settings.axis,
                settings.patch_size,
                settings.patch_overlap,
                settings.overlap_mode,
                settings.batch_size,
            )
            continue
        slices = to_slices(part, settings.axis)
        shape = slices.shape[-2:]
        padded = torch.from_numpy(np.ascontiguousarray(pad_hw(slices, padded_size(shape, settings.pad)), np.float32))
        result = np.zeros_like(slices, dtype=np.float32)
        starts = range(0, padded.shape[0], settings.batch_size)
        for s in tqdm(starts, desc="upsampling", disable=not progress, leave=False):
            batch = padded[s : s + settings.batch_size]
            keep = batch.flatten(1).amax(1) > 0  # empty slices stay empty
            if not keep.any():
                continue
            x = batch[keep]
            n = x.shape[0]
            if settings.compile and n < settings.batch_size:  # one static shape: no recompilation per batch size
                x = torch.cat([x, x.new_zeros(settings.batch_size - n, *x.shape[1:])])
            y = _run(fn, autocast, x, device, settings.channels_last)[:n].numpy()
            result[s : s + batch.shape[0]][keep.numpy()] = crop_hw(y, shape)
        out[group] = from_slices(result, settings.axis)
    out = np.clip(out, 0.0, 1.0)
    if mask is not None:
        out *= mask.astype(bool)[None]
    return out


def explain_slices(
    generator: nn.Module,
    critic: nn.Module | None,
    volume: np.ndarray,
    indices: Sequence[int],
    settings: InferenceSettings,
    target: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Attention-gate masks (paper Fig. 8) and critic Grad-CAM maps (Fig. 9) for some slices along the axis.

    Returns arrays keyed ``input``, ``output`` (S, C, H, W), ``attention_<k>`` (S, 1, h_k, w_k) for each gate
    from coarse to fine, ``gradcam_output`` and, with ``target``, ``target`` and ``gradcam_target`` (S, 1, H, W).
    Runs in fp32 on the CPU: it is a handful of slices.
    """
    from brainsr.models.critic import gradcam

    generator = generator.float().eval().cpu()
    slices = to_slices(volume, settings.axis)[list(indices)]
    shape = slices.shape[-2:]
    size = padded_size(shape, settings.pad)
    x = torch.from_numpy(np.ascontiguousarray(pad_hw(slices, size), np.float32))
    if settings.channels_mode == "single":
        x = x.reshape(-1, 1, *size)
    result: dict[str, np.ndarray] = {"indices": np.asarray(indices), "input": slices}
    with torch.no_grad():
        if getattr(generator, "attention", False):
            y, masks = generator(x, return_attention=True)
            for k, alpha in enumerate(masks):
                result[f"attention_{k + 1}"] = alpha.numpy()
        else:
            y = generator(x)
    y_out = y.reshape(len(indices), -1, *size)
    result["output"] = crop_hw(y_out.numpy(), shape)
    if critic is not None:
        critic = critic.float().eval().cpu()
        cam_in = y if settings.channels_mode == "multi" else y.reshape(len(indices), -1, *size)[:, :1]
        result["gradcam_output"] = crop_hw(gradcam(critic, cam_in).numpy(), shape)
        if target is not None:
            t = torch.from_numpy(np.ascontiguousarray(pad_hw(to_slices(target, settings.axis)[list(indices)], size)))
            t = t.float() if settings.channels_mode == "multi" else t[:, :1].float()
            result["target"] = to_slices(target, settings.axis)[list(indices)]
            result["gradcam_target"] = crop_hw(gradcam(critic, t).numpy(), shape)
    return result
