"""Resampling onto the analysis grid, masking and rescaling to [0, 1] (paper 3.1).

Each sequence is resampled once, from its native (bias-corrected, brain-extracted) image, through the whole
transform chain (sequence -> session T1w -> template), so no image is interpolated twice.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np

from brainsr.base.images import scoped_tmpdir
from brainsr.base.morphology import dilate_mm
from brainsr.preprocess.itk import to_ants

__all__ = ["INTERPOLATIONS", "SINC_RADIUS", "brain_core", "resample", "rescale", "robust_range", "sinc_resample"]

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
    within: np.ndarray | None = None,
) -> nib.Nifti1Image:
    """``moving`` resampled onto ``reference``'s grid through ``transforms`` (``ants.apply_transforms`` order;
    ``invert`` flags linear transforms to apply inverted). An empty list is the identity (same world space).
    ``within``: the voxels whose values are needed (the rest may come out zero); windowed sinc through linear
    transforms is then computed there only (:func:`sinc_resample`)."""
    import ants

    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}; choose one of {sorted(INTERPOLATIONS)}")
    linear = bool(transforms) and not invert and all(str(t).endswith(".mat") for t in transforms)
    if interpolation == "sinc" and within is not None and linear:
        return sinc_resample(moving, reference, list(transforms), within)
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


#: Radius (voxels) of ITK's Lanczos windowed-sinc kernel as ANTs applies it (``lanczosWindowedSinc``).
SINC_RADIUS = 3


def _chain_affine(moving: nib.Nifti1Image, reference: nib.Nifti1Image, transforms: list[str]) -> np.ndarray:
    """4x4 map from reference voxel indices to moving voxel indices through a chain of linear ANTs transforms
    (``ants.apply_transforms`` order), fitted exactly on the grid's corners mapped by ANTs itself."""
    from brainsr.preprocess.register import map_points, ras_to_lps

    corners = np.array(np.meshgrid(*[[0, n - 1] for n in reference.shape[:3]], indexing="ij")).reshape(3, -1).T
    world = nib.affines.apply_affine(reference.affine, corners)
    moved = ras_to_lps(map_points(ras_to_lps(world), transforms))
    target = nib.affines.apply_affine(np.linalg.inv(moving.affine), moved)
    design = np.c_[corners, np.ones(len(corners))]
    fit = np.linalg.lstsq(design, target, rcond=None)[0].T  # (3, 4): exact for linear transforms
    return np.vstack([fit, [0.0, 0.0, 0.0, 1.0]])


def _lanczos_weights(frac: np.ndarray) -> np.ndarray:
    """(N, 2r) float32 Lanczos weights sinc(x) sinc(x / r) of the taps at offsets x = frac - (1-r..r) from the base
    index (not normalised, as in ITK). For r = 3 one sine serves both factors: with s = sin(pi x / 3),
    sin(pi x) = 3 s - 4 s^3, so the weight is 3 s^2 (3 - 4 s^2) / (pi x)^2 (1 at x = 0)."""
    x = frac[:, None] - np.arange(1 - SINC_RADIUS, SINC_RADIUS + 1)[None, :]
    s2 = np.sin(x * (np.pi / SINC_RADIUS)) ** 2
    px2 = (np.pi * x) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(px2 > 0, 3.0 * s2 * (3.0 - 4.0 * s2) / px2, 1.0)
    return w.astype(np.float32)


def sinc_resample(
    moving: nib.Nifti1Image,
    reference: nib.Nifti1Image,
    transforms: list[str],
    within: np.ndarray,
    chunk: int = 50_000,
) -> nib.Nifti1Image:
    """Windowed-sinc resampling through linear transforms, computed only at the voxels of ``within`` (zero
    elsewhere): ITK's Lanczos kernel of radius 3 as ANTs' ``lanczosWindowedSinc`` applies it (weights not
    normalised, taps beyond the border count zero, zero outside the image), so the values equal
    :func:`resample`'s there (to float rounding) at a fraction of its cost. The image is zero-padded by the
    radius, so every tap is in the array and each voxel's 6 taps along the last axis are contiguous. Voxels go in
    chunks of ``chunk``: temporaries of a few MB are reused by the allocator (chunks of 200 000 took twice the CPU,
    most of it in page faults of fresh temporaries)."""
    r = SINC_RADIUS
    padded = np.pad(np.asarray(moving.dataobj, dtype=np.float32), r)
    runs = np.lib.stride_tricks.sliding_window_view(padded.ravel(), 2 * r)  # the 2r values from each index
    stride = np.array([padded.shape[1] * padded.shape[2], padded.shape[2], 1])
    size = np.array(moving.shape[:3])
    m = _chain_affine(moving, reference, transforms)
    vox = np.argwhere(within)
    values = np.zeros(len(vox), np.float32)
    for start in range(0, len(vox), chunk):
        c = vox[start : start + chunk] @ m[:3, :3].T + m[:3, 3]
        inside = np.all((c >= -0.5) & (c < size - 0.5), axis=1)
        base = np.floor(np.clip(c, -1, size)).astype(np.int64)
        w = [_lanczos_weights(c[:, d] - base[:, d]) for d in range(3)]
        first = (base + 1) @ stride  # padded index of the (1-r, 1-r, 1-r) tap
        acc = np.zeros(len(c), np.float32)
        for a in range(2 * r):
            for b in range(2 * r):
                row = runs[first + (a * stride[0] + b * stride[1])]
                acc += (w[0][:, a] * w[1][:, b]) * np.einsum("ij,ij->i", row, w[2])
        values[start : start + chunk] = np.where(inside, acc, 0.0)
    out = np.zeros(within.shape, np.float32)
    out[tuple(vox.T)] = values
    return nib.Nifti1Image(out, reference.affine)


def brain_core(mask: np.ndarray, core_mm: float, zooms: tuple[float, ...] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """``mask`` less its outer ``core_mm`` (voxels farther than ``core_mm`` from outside); ``mask`` if that is empty.

    Brain extraction leaves a rim of scalp fat or diploe inside the mask in some scans: far brighter than brain on
    T1w, it decides the high percentiles of the whole mask. The core excludes it.
    """
    mask = np.asarray(mask, bool)
    if core_mm <= 0:
        return mask
    core = dilate_mm(mask, -core_mm, np.asarray(zooms, float))
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
    *,
    core: np.ndarray | None = None,
) -> tuple[np.ndarray, dict]:
    """Mask and rescale linearly (paper 3.1) so that the low/high percentiles map to 0/1, clipping outliers.

    The percentiles are taken in the brain core (:func:`brain_core`, the mask less its outer ``core_mm``), so
    that a rim of non-brain tissue left by brain extraction does not set the scale of the brain. ``core``: that
    core when already computed (the sequences of a session share it).
    """
    core = brain_core(mask, core_mm, zooms) if core is None else core
    lo, hi = robust_range(data, core, percentiles)
    if hi <= lo:
        raise ValueError(f"cannot rescale: in-mask intensity range is empty ({lo} .. {hi})")
    out = np.clip((data - lo) / (hi - lo), 0.0, 1.0) * mask
    info = {"percentiles": list(percentiles), "core_mm": core_mm, "low": lo, "high": hi}
    return out.astype(np.float32), info
