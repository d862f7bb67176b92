"""One template-space scan set through one model (``brainsr infer``), written on the template grid and back on
the native grid.

The template-space output has the analysis grid's affine and intensities in [0, 1]. The native-space copy maps
each sequence back onto its own clinical acquisition grid through the inverse of the preprocessing chain
(native sequence -> session T1w -> template), so a user finds the result next to the original scan.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nibabel as nib
import numpy as np

from brainsr.base.device import pick_device
from brainsr.base.sidecar import write_sidecar
from brainsr.data import AXES, load_pair
from brainsr.infer.predict import InferenceSettings, explain_slices, inference_precision, upsample_volume
from brainsr.io import atomic_save_nifti, atomic_savez
from brainsr.models import Identity
from brainsr.models.files import load_model_file

if TYPE_CHECKING:
    from torch import nn

    from brainsr.models.critic import Critic

__all__ = ["infer_scan", "to_native"]


def to_native(
    image: nib.Nifti1Image, reference: str, transforms: Sequence[str], invert: Sequence[bool]
) -> nib.Nifti1Image:
    """``image`` (template grid) resampled linearly onto ``reference``'s grid, clipped to [0, 1]."""
    from brainsr.base.images import load_checked
    from brainsr.preprocess.resample import resample

    moved = resample(image, load_checked(reference), list(transforms), "linear", invert=list(invert))
    data = np.clip(np.asarray(moved.dataobj, dtype=np.float32), 0.0, 1.0)
    return nib.Nifti1Image(data, moved.affine)


def _load_generator(
    model: str,
    seqs: list[str],
    grid_shape: list[int],
    expect: Mapping[str, Any] | None,
    batch_size: int,
    precision: str,
    compile: bool,
) -> tuple[nn.Module, Critic | None, dict[str, Any], InferenceSettings]:
    """G, D, the model record and the inference settings of ``model`` (a model file, or ``"identity"``), checked
    against the sequences and the grid (``grid_shape``) of the scans."""
    if model == "identity":
        generator, critic, meta = Identity(len(seqs)), None, {"model": {"name": "identity"}, "data": {}}
        return generator, critic, meta, InferenceSettings(batch_size=batch_size)
    loaded = load_model_file(model, expect={"sequences": seqs, **dict(expect or {})})
    generator, critic, meta = loaded.generator, loaded.critic, loaded.meta
    grid = meta["data"].get("grid_shape")
    if grid is not None and list(grid) != grid_shape:
        raise ValueError(f"{model}: model was trained on a {grid} grid, the scans are {grid_shape}")
    settings = InferenceSettings.from_meta(meta["data"], batch_size=batch_size, precision=precision, compile=compile)
    return generator, critic, meta, settings


def _write_native(
    result: np.ndarray,
    affine: np.ndarray,
    seqs: list[str],
    native: Mapping[str, Mapping[str, Any]],
    out: Mapping[str, str],
    out_native: Mapping[str, str],
    model_info: Mapping[str, Any],
) -> None:
    """Each sequence's output mapped back onto its clinical grid (``native``), with its sidecar."""
    for c, seq in enumerate(seqs):
        spec = native[seq]
        img = to_native(nib.Nifti1Image(result[c], affine), spec["reference"], spec["transforms"], spec["invert"])
        atomic_save_nifti(img, out_native[seq])
        write_sidecar(
            Path(out_native[seq]),
            Sources=[Path(out[seq]).name],
            Model=model_info,
            Space="native",
            Transforms=[Path(t).name for t in spec["transforms"]],
            Interpolation="linear",
        )


def infer_scan(
    *,
    images: Mapping[str, str],
    out: Mapping[str, str],
    model: str,
    mask: str | None = None,
    expect: Mapping[str, Any] | None = None,
    native: Mapping[str, Mapping[str, Any]] | None = None,
    out_native: Mapping[str, str] | None = None,
    explain: str | None = None,
    target: Mapping[str, str] | None = None,
    device: str = "auto",
    batch_size: int = 16,
    precision: str = "auto",
    compile: bool = False,
) -> dict[str, Any]:
    """Upsample one scan set (``images``: template-space sequence -> path, in the model's channel order).

    ``model`` is a model file or ``"identity"`` (the interpolation baseline). ``native``: per sequence
    ``{"reference": path, "transforms": [...], "invert": [...]}`` for the native-space copies in ``out_native``.
    ``explain``: an ``.npz`` file for attention masks and Grad-CAM of the middle slices (figures 8-9).
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    seqs = list(images)
    pair = load_pair("scan", [images[s] for s in seqs], [target[s] for s in seqs] if target else None, mask)
    dev = pick_device(device)
    generator, critic, meta, settings = _load_generator(
        model, seqs, list(pair.x.shape[1:]), expect, batch_size, precision, compile
    )
    timings["load"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    model_info = {"Name": meta["model"]["name"], "File": Path(model).name if model != "identity" else None}
    if model == "identity":
        result = np.clip(pair.x, 0.0, 1.0) * (pair.mask[None] if pair.mask is not None else 1.0)
    else:  # precision resolved once (auto: measured and cached per machine) and recorded in every sidecar
        choice = inference_precision(generator, pair.x, settings, dev)
        settings = replace(settings, precision=choice.precision)
        model_info["Precision"] = choice.record()
        result = upsample_volume(generator, pair.x, settings, dev, mask=pair.mask, progress=True)
    timings["upsample"] = time.perf_counter() - t0
    for c, seq in enumerate(seqs):
        atomic_save_nifti(nib.Nifti1Image(result[c].astype(np.float32), pair.affine), out[seq])
        write_sidecar(
            Path(out[seq]),
            Sources=[Path(images[seq]).name],
            Model=model_info,
            Space="template",
            Intensity="[0, 1], scaled like the preprocessed research scans",
        )
    if native and out_native:
        t0 = time.perf_counter()
        _write_native(result, pair.affine, seqs, native, out, out_native, model_info)
        timings["native"] = time.perf_counter() - t0
    if explain:
        t0 = time.perf_counter()
        axis_len = pair.x.shape[1 + AXES[settings.axis]]
        indices = sorted({axis_len // 2, axis_len * 2 // 5, axis_len * 3 // 5})
        maps = explain_slices(generator, critic, pair.x, indices, settings, target=pair.y)
        atomic_savez(explain, axis=settings.axis, **maps)
        timings["explain"] = time.perf_counter() - t0
    return {"model": meta["model"]["name"], "seconds": timings, "shape": list(pair.x.shape)}
