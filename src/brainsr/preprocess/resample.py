"""Resampling onto the analysis grid, masking and rescaling to [0, 1] (paper 3.1).

Each sequence is resampled once, from its native (bias-corrected, brain-extracted) image, through the whole
transform chain (sequence -> session T1w -> template), so no image is interpolated twice.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
from scipy import ndimage

from brainsr.preprocess.images import scoped_tmpdir, to_ants

__all__ = ["INTERPOLATIONS", "brain_core", "resample", "rescale", "robust_range"]

#: Interpolation names used in the config -> ANTs interpolators.
INTERPOLATIONS = {
    "linear": "linear",
    "sinc": "lanczosWindowedSinc",
    "bspline": "bSpline",
    "nearest": "nearestNeighbor",
}


def resample(
    moving: nib.Nifti1Image,
    reference: nib.Nifti1Image,
    transforms: list[str],
    interpolation: str,
    invert: list[bool] | None = None,
) -> nib.Nifti1Image:
    """``moving`` resampled onto ``reference``'s grid through ``transforms`` (``ants.apply_transforms`` order;
    ``invert`` flags linear transforms to apply inverted). An empty list is the identity (same world space)."""
    import ants

    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}; choose one of {sorted(INTERPOLATIONS)}")
    with scoped_tmpdir() as tmp:
        transforms = list(transforms)
        if not transforms:
            identity = str(tmp / "identity.mat")
            ants.write_transform(ants.create_ants_transform(transform_type="AffineTransform", dimension=3), identity)
            transforms, invert = [identity], None
        out = ants.apply_transforms(
            to_ants(reference),
            to_ants(moving),
            transformlist=transforms,
            interpolator=INTERPOLATIONS[interpolation],
            whichtoinvert=invert,
        )
    return nib.Nifti1Image(out.numpy().astype(np.float32), reference.affine)


def brain_core(mask: np.ndarray, core_mm: float, zooms: tuple[float, ...] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """``mask`` less its outer ``core_mm`` (voxels farther than ``core_mm`` from outside); ``mask`` if that is empty.

    Brain extraction leaves a rim of scalp fat or diploe inside the mask in some scans: far brighter than brain on
    T1w, it decides the high percentiles of the whole mask. The core excludes it.
    """
    mask = np.asarray(mask, bool)
    if core_mm <= 0:
        return mask
    core = ndimage.distance_transform_edt(mask, sampling=zooms) > core_mm
    return core if core.any() else mask


def robust_range(data: np.ndarray, mask: np.ndarray, percentiles: tuple[float, float]) -> tuple[float, float]:
    """Intensities at the given percentiles inside ``mask``."""
    values = data[mask]
    if values.size == 0:
        raise ValueError("cannot rescale: the brain mask is empty on the analysis grid")
    lo, hi = np.percentile(values, percentiles)
    return float(lo), float(hi)


def rescale(
    data: np.ndarray,
    mask: np.ndarray,
    percentiles: tuple[float, float],
    core_mm: float = 0.0,
    zooms: tuple[float, ...] = (1.0, 1.0, 1.0),
) -> tuple[np.ndarray, dict]:
    """Mask and rescale linearly (paper 3.1) so that the low/high percentiles map to 0/1, clipping outliers.

    The percentiles are taken in the brain core (:func:`brain_core`, the mask less its outer ``core_mm``), so
    that a rim of non-brain tissue left by brain extraction does not set the scale of the brain.
    """
    lo, hi = robust_range(data, brain_core(mask, core_mm, zooms), percentiles)
    if hi <= lo:
        raise ValueError(f"cannot rescale: in-mask intensity range is empty ({lo} .. {hi})")
    out = np.clip((data - lo) / (hi - lo), 0.0, 1.0) * mask
    info = {"percentiles": list(percentiles), "core_mm": core_mm, "low": lo, "high": hi}
    return out.astype(np.float32), info
