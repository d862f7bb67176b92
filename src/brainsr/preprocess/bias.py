"""Bias-field correction (paper 3.1): N4 (ANTsPy) inside a head mask, or FSL FAST when configured and present.

N4 fits a smooth multiplicative field to the voxels of a mask; without a mask on a skull-stripped image it fits
nothing useful, so a head mask (Otsu threshold, closing, hole filling, largest component) is always passed.
"""

from __future__ import annotations

import time

import nibabel as nib
import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from brainsr.base.images import scoped_tmpdir
from brainsr.preprocess.itk import to_ants

__all__ = ["BIAS_ENGINES", "correct_bias", "head_mask"]

BIAS_ENGINES = ("n4", "fast")


def _ball(radius_mm: float, zooms: tuple[float, ...]) -> np.ndarray:
    """Ellipsoidal structuring element of ``radius_mm`` on a grid with voxel sizes ``zooms``."""
    r = [max(1, round(radius_mm / z)) for z in zooms]
    grid = np.ogrid[tuple(slice(-k, k + 1) for k in r)]
    return sum((g * z / radius_mm) ** 2 for g, z in zip(grid, zooms, strict=True)) <= 1.0


def head_mask(img: nib.Nifti1Image, closing_mm: float = 6.0) -> np.ndarray:
    """Boolean head mask: Otsu threshold of the lightly smoothed image, closed, holes filled, largest component."""
    data = np.asarray(img.dataobj, dtype=np.float32)
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    smooth = ndimage.gaussian_filter(data, sigma=[1.0 / z for z in zooms])
    positive = smooth[smooth > 0]
    thr = threshold_otsu(positive) if positive.size > 16 else 0.0
    mask = smooth > 0.5 * thr
    mask = ndimage.binary_closing(mask, structure=_ball(closing_mm, zooms), iterations=1)
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, n + 1))
        mask = labels == (int(np.argmax(sizes)) + 1)
    filled = np.zeros_like(mask)
    for k in range(mask.shape[2]):  # fill per slice as well: thick slices leave open holes in 3D
        filled[..., k] = ndimage.binary_fill_holes(mask[..., k])
    return ndimage.binary_fill_holes(filled | mask)


def _n4(img: nib.Nifti1Image, fit_mm: float, iterations: list[int], tol: float) -> tuple[np.ndarray, np.ndarray]:
    """N4 fitted on ``img`` resampled to isotropic ``fit_mm`` inside its head mask; the smooth field is
    interpolated back and divided out at full resolution. Returns (corrected data, head mask on the fit grid)."""
    import ants

    from brainsr.preprocess.template import iso_grid, resample_to_grid

    affine, shape = iso_grid(img, fit_mm)
    small = resample_to_grid(img, affine, shape, order=1)
    mask = head_mask(small)
    with scoped_tmpdir():
        field = ants.n4_bias_field_correction(
            to_ants(small),
            mask=to_ants(nib.Nifti1Image(mask.astype(np.float32), affine)),
            shrink_factor=1,
            convergence={"iters": iterations, "tol": tol},
            return_bias_field=True,
        ).numpy()
    log_field = nib.Nifti1Image(np.log(np.clip(field, 1e-3, None)).astype(np.float32), affine)
    vox = np.linalg.inv(affine) @ img.affine  # native voxel -> fit-grid voxel
    native_log = ndimage.affine_transform(
        np.asarray(log_field.dataobj), vox[:3, :3], vox[:3, 3], output_shape=img.shape, order=1, mode="nearest"
    )
    data = np.asarray(img.dataobj, dtype=np.float32) * np.exp(-native_log).astype(np.float32)
    return data, mask


def correct_bias(
    img: nib.Nifti1Image,
    engine: str = "n4",
    *,
    fit_mm: float = 4.0,
    iterations: tuple[int, ...] = (50, 50, 50),
    tol: float = 1e-3,
) -> tuple[nib.Nifti1Image, dict]:
    """Bias-corrected image and a summary (engine, head-mask volume at the fit resolution, seconds)."""
    if engine not in BIAS_ENGINES:
        raise ValueError(f"unknown bias engine {engine!r}; choose one of {BIAS_ENGINES}")
    start = time.perf_counter()
    info: dict = {"engine": engine}
    if engine == "n4":
        data, mask = _n4(img, fit_mm, list(iterations), tol)
        info.update(fit_mm=fit_mm, head_mask_ml=float(mask.sum() * fit_mm**3 / 1000.0))
    else:
        from brainsr.preprocess.fsl import fast_restore

        data = fast_restore(img)
    data = np.clip(data, 0, None)
    info["seconds"] = time.perf_counter() - start
    return nib.Nifti1Image(data, img.affine), info
