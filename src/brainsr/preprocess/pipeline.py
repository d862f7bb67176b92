"""The preprocessing steps the workflow runs per session (paper 3.1), each writing its outputs atomically.

1. :func:`prepare_session`: bias correction of every sequence, rigid alignment of T2w and FLAIR to the session's
   T1w, brain extraction on an isotropic grid in T1w space (or a user-edited mask), brain-extracted native images.
2. :func:`register_session`: the session T1w brain to the template, once per alignment and cost.
3. :func:`resample_session`: every sequence through its chain (sequence -> T1w -> template) onto the analysis
   grid, masked and rescaled to [0, 1], once per alignment x resampling variant ("prep").
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from brainsr.base.images import ImageInputError, load_checked, load_scan, scoped_tmpdir, zooms_mm
from brainsr.base.sidecar import write_sidecar
from brainsr.io import atomic_save_nifti
from brainsr.preprocess.bias import correct_bias
from brainsr.preprocess.intensity import scale_session
from brainsr.preprocess.layout import initial_key, native_chain, prep_label, prep_spec, transform_keys
from brainsr.preprocess.register import downsample, invert_linear, register_linear, register_warp
from brainsr.preprocess.resample import resample
from brainsr.preprocess.template import iso_grid, resample_to_grid

__all__ = [
    "initial_key",
    "native_chain",
    "prep_label",
    "prep_spec",
    "prepare_session",
    "register_keys",
    "register_session",
    "resample_session",
    "session_on_iso",
    "transform_keys",
]

REFERENCE = "T1w"


def _binary(img: nib.Nifti1Image, threshold: float = 0.5) -> np.ndarray:
    return np.asarray(img.dataobj) >= threshold


def _session_mask(
    user_mask: np.ndarray | None,
    on_iso: Mapping[str, nib.Nifti1Image],
    brain: Mapping[str, object],
    reference_image: str,
) -> tuple[np.ndarray, str]:
    """The session brain mask on the isotropic T1w-space grid and the engine that made it: the user's mask
    (``manual``), else brain extraction of the sequences on that grid; a failure names ``reference_image``."""
    if user_mask is not None:
        return user_mask, "manual"
    from brainsr.preprocess.brain import BrainExtractionError, extract_brain

    engine = str(brain["engine"])
    params = {k: v for k, v in brain.items() if k not in ("engine", "manual_masks_dir")}
    try:
        mask = np.asarray(extract_brain(on_iso, engine, **params).dataobj) > 0
    except BrainExtractionError as exc:  # name the session's image, and the way out
        raise ImageInputError(
            reference_image, f"brain extraction failed: {exc}; check the scan, or give a manual brain mask"
        ) from exc
    return mask, engine


def _native_masks(
    mask: np.ndarray,
    affine: np.ndarray,
    corrected: Mapping[str, nib.Nifti1Image],
    staged: Mapping[str, str],
) -> dict[str, np.ndarray]:
    """The session mask mapped onto each sequence's native grid (through the inverse of its rigid transform)."""
    return {
        seq: _binary(
            resample(
                nib.Nifti1Image(mask.astype(np.uint8), affine),
                img,
                [staged[seq]] if seq in staged else [],
                "linear",
                invert=[True] if seq in staged else None,
            )
        )
        for seq, img in corrected.items()
    }


def _write_brains(
    images: Mapping[str, str],
    corrected: Mapping[str, nib.Nifti1Image],
    native_masks: Mapping[str, np.ndarray],
    out_brain: Mapping[str, str],
    bias_info: Mapping[str, Any],
    engine: str,
    out_mask: str,
) -> None:
    """The brain-extracted, bias-corrected native image of each sequence, with its sidecar."""
    for seq, img in corrected.items():
        brain_img = nib.Nifti1Image(np.asarray(img.dataobj) * native_masks[seq], img.affine)
        atomic_save_nifti(brain_img, out_brain[seq])
        write_sidecar(
            out_brain[seq],
            Sources=[f"bids:raw:{Path(images[seq]).name}"],
            BiasCorrection=bias_info[seq],
            BrainExtraction={"engine": engine, "mask": Path(out_mask).name},
            SkullStripped=True,
        )


def _correct(
    loaded: Mapping[str, nib.Nifti1Image], bias: Mapping[str, object], timings: dict[str, float]
) -> tuple[dict[str, nib.Nifti1Image], dict[str, Any]]:
    """Each sequence bias-corrected on its native grid, and the correction's record."""
    corrected, info = {}, {}
    for seq, img in loaded.items():
        corrected[seq], info[seq] = correct_bias(img, str(bias["engine"]), fit_mm=float(bias["fit_mm"]))
        timings[f"bias_{seq}"] = info[seq]["seconds"]
    return corrected, info


def _align_on_iso(
    corrected: Mapping[str, nib.Nifti1Image],
    grid: tuple[np.ndarray, tuple[int, ...]],
    staging: Path,
    level_mm: float,
    timings: dict[str, float],
) -> tuple[dict[str, nib.Nifti1Image], dict[str, str]]:
    """T1w on the isotropic ``grid`` (affine, shape) and every other sequence rigidly registered to it (Mattes MI
    at ``level_mm``; transforms written under ``staging``) and resampled onto it: what brain extraction sees."""
    ref = resample_to_grid(corrected[REFERENCE], grid[0], grid[1], order=1)
    on_iso, staged = {REFERENCE: ref}, {seq: str(staging / f"{seq}.mat") for seq in corrected if seq != REFERENCE}
    for seq, path in staged.items():
        info = register_linear(ref, corrected[seq], "rigid", "mi", path, level_mm=level_mm)
        timings[f"rigid_{seq}_to_{REFERENCE}"] = info["seconds"]
        on_iso[seq] = resample(corrected[seq], ref, [path], "linear")
    return on_iso, staged


def session_on_iso(
    images: Mapping[str, str], *, bias: Mapping[str, object], iso_mm: float = 1.0, level_mm: float = 3.0
) -> dict[str, nib.Nifti1Image]:
    """The images brain extraction sees in :func:`prepare_session` (bias-corrected, aligned to T1w, on the
    isotropic T1w-space grid), for measuring engines side by side (benchmarks/brain_extraction.py)."""
    loaded = {seq: load_scan(path) for seq, path in images.items()}
    corrected, _ = _correct(loaded, bias, {})
    with scoped_tmpdir(prefix="brainsr-xfm-") as staging:
        on_iso, _ = _align_on_iso(corrected, iso_grid(loaded[REFERENCE], iso_mm), staging, level_mm, {})
    return on_iso


def prepare_session(
    images: Mapping[str, str],
    *,
    out_brain: Mapping[str, str],
    out_mask: str,
    out_xfm: Mapping[str, str],
    bias: Mapping[str, object],
    brain: Mapping[str, object],
    manual_mask: str | None = None,
    iso_mm: float = 1.0,
    level_mm: float = 3.0,
) -> dict:
    """Step 1 for one session. ``images``: raw path per sequence (T1w first); outputs named by the caller.

    Writes brain-extracted, bias-corrected native images (``out_brain``; no extracranial tissue: brain
    extraction is also anonymisation, paper 3.1), the brain mask on the isotropic T1w-space grid (``out_mask``)
    and the rigid sequence -> T1w transforms (``out_xfm``, every sequence but T1w).
    """
    timings: dict[str, float] = {}
    loaded = {seq: load_scan(path) for seq, path in images.items()}  # RAS+: storage order cannot matter
    affine, shape = iso_grid(loaded[REFERENCE], iso_mm)
    grid = nib.Nifti1Image(np.zeros(shape, np.uint8), affine)
    user_mask = None
    if manual_mask:  # checked first: a bad user mask fails before any work is done
        user_mask = _binary(resample(load_checked(manual_mask), grid, [], "nearest"))
        if not user_mask.any():
            raise ImageInputError(manual_mask, "manual brain mask is empty on the session grid")
    corrected, bias_info = _correct(loaded, bias, timings)
    with scoped_tmpdir(prefix="brainsr-xfm-") as staging:  # transforms are published with the other outputs
        on_iso, staged = _align_on_iso(corrected, (affine, shape), staging, level_mm, timings)
        start = time.perf_counter()
        mask, engine = _session_mask(user_mask, on_iso, brain, images[REFERENCE])
        timings["brain_extraction"] = time.perf_counter() - start
        native_masks = _native_masks(mask, affine, corrected, staged)
        for seq, path in staged.items():
            Path(out_xfm[seq]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out_xfm[seq])
    mask_img = nib.Nifti1Image(mask.astype(np.uint8), affine)
    _write_brains(images, corrected, native_masks, out_brain, bias_info, engine, out_mask)
    atomic_save_nifti(mask_img, out_mask)
    voxel_ml = iso_mm**3 / 1000.0
    return {"engine": engine, "brain_ml": float(mask.sum() * voxel_ml), "seconds": timings}


def _session_images(brain_t1w: str, mask: str, template: str, template_mask: str, level_mm: float) -> tuple:
    """(template, template mask, session T1w brain on the mask's isotropic grid), each downsampled to
    ``level_mm`` once (:func:`~brainsr.preprocess.register.downsample`): the registrations' inputs."""
    mask_img = load_checked(mask)
    moving = resample_to_grid(load_checked(brain_t1w), mask_img.affine, mask_img.shape, order=1)
    return tuple(downsample(img, level_mm) for img in (load_checked(template), load_checked(template_mask), moving))


def _register_key(
    images: tuple,
    key: str,
    out: tuple[str, str],
    initial: str | None,
    level_mm: float,
    syn_iterations: tuple[int, ...],
) -> dict:
    """One template transform (and its inverse) from loaded images (see :func:`register_session`)."""
    fixed, fixed_mask, moving = images
    if key == "warp":
        if not initial:
            raise ValueError("the warp registration needs the affinemi transform as its initial transform")
        return register_warp(fixed, moving, initial, out[0], out[1], level_mm=level_mm, iterations=syn_iterations)
    for alignment in ("rigid", "affine"):
        if key.startswith(alignment):
            cost = key[len(alignment) :]
            info = register_linear(
                fixed, moving, alignment, cost, out[0], fixed_mask=fixed_mask, level_mm=level_mm, initial=initial
            )
            invert_linear(out[0], out[1])
            return info
    raise ValueError(f"unknown transform key {key!r} (expected rigid<cost>, affine<cost> or warp)")


def register_session(
    brain_t1w: str,
    mask: str,
    template: str,
    template_mask: str,
    *,
    key: str,
    out: str,
    out_inverse: str,
    initial: str | None = None,
    level_mm: float = 2.0,
    syn_iterations: tuple[int, ...] = (40, 20),
) -> dict:
    """Step 2: the session T1w brain to the template for one transform key (see :func:`transform_keys`).

    ``warp`` needs ``initial``, the ``affinemi`` transform it starts from; ``rigidcr``/``affinecr`` start from
    ``initial`` (the ``rigidmi``/``affinemi`` transform, see :func:`initial_key`) when given.
    """
    images = _session_images(brain_t1w, mask, template, template_mask, level_mm)
    return _register_key(images, key, (out, out_inverse), initial, level_mm, syn_iterations)


def register_keys(
    brain_t1w: str,
    mask: str,
    template: str,
    template_mask: str,
    *,
    transforms: Mapping[str, tuple[str, str]],
    level_mm: float = 2.0,
    syn_iterations: tuple[int, ...] = (40, 20),
) -> dict[str, dict]:
    """Step 2 for several keys at once, the images read once: ``transforms`` maps each key to its (forward,
    inverse) files, in an order where a key comes after the one it starts from (:func:`initial_key`), which is
    then its initial transform. Returns each key's registration summary."""
    images = _session_images(brain_t1w, mask, template, template_mask, level_mm)
    done: dict[str, dict] = {}
    for key, out in transforms.items():
        first = initial_key(key)
        initial = transforms[first][0] if first in done else None
        done[key] = _register_key(images, key, out, initial, level_mm, syn_iterations)
    return done


def resample_session(
    brains: Mapping[str, str],
    mask: str,
    template: str,
    xfm_template: str,
    xfm_to_reference: Mapping[str, str],
    *,
    interpolation: str,
    intensity: Mapping[str, Any],
    out_images: Mapping[str, str],
    out_mask: str,
    prep: str,
) -> dict:
    """Step 3: every sequence onto the analysis grid through one chain, masked, scaled to [0, 1] as ``intensity``
    (:func:`brainsr.preprocess.intensity.intensity_settings`) says."""
    grid = load_checked(template)
    mask_tpl = _binary(resample(load_checked(mask), grid, [xfm_template], "linear"))
    if not mask_tpl.any():
        raise ImageInputError(mask, "brain mask is empty after alignment to the template")
    chains, moved = {}, {}
    for seq, path in brains.items():
        chains[seq] = [xfm_template] + ([] if seq == REFERENCE else [xfm_to_reference[seq]])
        img = resample(load_checked(path), grid, chains[seq], interpolation, within=mask_tpl)  # only the mask kept
        moved[seq] = np.clip(np.asarray(img.dataobj), 0, None)
    info = {}
    for seq, (data, scale) in scale_session(moved, mask_tpl, zooms_mm(grid), intensity).items():
        path, chain = brains[seq], chains[seq]
        atomic_save_nifti(nib.Nifti1Image(data, grid.affine), out_images[seq])
        write_sidecar(
            out_images[seq],
            Sources=[Path(path).name],
            Transforms=[Path(t).name for t in chain],
            Interpolation=interpolation,
            Preprocessing=prep,
            Rescale=scale,
            SkullStripped=True,
        )
        info[seq] = scale
    atomic_save_nifti(nib.Nifti1Image(mask_tpl.astype(np.uint8), grid.affine), out_mask)
    return info
