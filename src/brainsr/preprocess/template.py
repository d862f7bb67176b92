"""The brain template and the analysis grid (paper 3.1).

The default template is the MNI152 2009 (nonlinear, symmetric) T1w brain and brain mask shipped inside nilearn;
any template image + brain mask can be given instead (the paper used an age-relevant template). The bounding box
of the template's intracranial mask, plus a margin, defines the crop box of the analysis grid (the paper's
148 x 137 x 135 voxels at about 1 mm).
"""

from __future__ import annotations

import math
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from brainsr.base.images import ImageInputError, load_checked

__all__ = ["analysis_grid", "crop_box", "iso_grid", "load_template", "resample_to_grid", "write_grid"]


def load_template(image: str = "", mask: str = "") -> tuple[nib.Nifti1Image, nib.Nifti1Image]:
    """Template T1w brain image and its brain mask: nilearn's MNI152 2009 when ``image`` is empty."""
    if not image:
        from nilearn import datasets

        tpl = datasets.load_mni152_template(resolution=1)
        msk = datasets.load_mni152_brain_mask(resolution=1)
        tpl = nib.Nifti1Image(np.asarray(tpl.dataobj, dtype=np.float32), tpl.affine)
        msk = nib.Nifti1Image((np.asarray(msk.dataobj) > 0).astype(np.uint8), msk.affine)
        return tpl, msk
    if not mask:
        raise ValueError("a custom template image needs its brain mask too (preprocess.template.mask)")
    tpl = load_checked(image)
    msk_img = load_checked(mask)
    if msk_img.shape != tpl.shape or not np.allclose(msk_img.affine, tpl.affine, atol=1e-3):
        raise ImageInputError(mask, f"template mask grid differs from the template image {image}")
    data = np.asarray(msk_img.dataobj) > 0.5
    return tpl, nib.Nifti1Image(data.astype(np.uint8), msk_img.affine)


def crop_box(mask: nib.Nifti1Image, margin_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """World-space (RAS mm) lower and upper corners of the mask's bounding box grown by ``margin_mm``."""
    idx = np.argwhere(np.asarray(mask.dataobj) > 0)
    if idx.size == 0:
        raise ValueError("template brain mask is empty")
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], float)
    lo, hi = idx.min(0), idx.max(0)
    vox = lo + corners * (hi - lo)
    world = nib.affines.apply_affine(mask.affine, vox)
    return world.min(0) - margin_mm, world.max(0) + margin_mm


def analysis_grid(mask: nib.Nifti1Image, spacing_mm: float, margin_mm: float) -> tuple[np.ndarray, tuple[int, ...]]:
    """Affine and shape of the analysis grid: the crop box sampled at ``spacing_mm`` (RAS-oriented, axis-aligned)."""
    lo, hi = crop_box(mask, margin_mm)
    shape = tuple(math.floor((h - lo_) / spacing_mm) + 1 for lo_, h in zip(lo, hi, strict=True))
    affine = np.diag([spacing_mm] * 3 + [1.0])
    affine[:3, 3] = lo
    return affine, shape


def resample_to_grid(
    img: nib.Nifti1Image, affine: np.ndarray, shape: tuple[int, ...], order: int = 1, smooth: bool = True
) -> nib.Nifti1Image:
    """Resample ``img`` onto a grid that shares its world space (identity transform), with anti-aliasing."""
    data = np.asarray(img.dataobj, dtype=np.float32)
    src_zooms = np.asarray(img.header.get_zooms()[:3], float)
    dst_zooms = np.linalg.norm(affine[:3, :3], axis=0)
    if smooth and order > 0:
        sigma = np.sqrt(np.clip((dst_zooms.max() / src_zooms) ** 2 - 1.0, 0, None)) / 2.355
        if np.any(sigma > 0.1):
            data = ndimage.gaussian_filter(data, sigma)
    vox = np.linalg.inv(img.affine) @ affine
    out = ndimage.affine_transform(data, vox[:3, :3], vox[:3, 3], output_shape=shape, order=order, cval=0.0)
    return nib.Nifti1Image(out.astype(np.float32), affine)


def iso_grid(img: nib.Nifti1Image, spacing_mm: float) -> tuple[np.ndarray, tuple[int, ...]]:
    """An isotropic grid covering ``img``'s field of view with its orientation (for estimation steps)."""
    zooms = np.asarray(img.header.get_zooms()[:3], float)
    axes = img.affine[:3, :3] / zooms
    extent = np.asarray(img.shape[:3]) * zooms
    shape = tuple(math.ceil(e / spacing_mm) for e in extent)
    affine = np.eye(4)
    affine[:3, :3] = axes * spacing_mm
    corner = img.affine @ np.r_[-0.5, -0.5, -0.5, 1.0]  # outer corner of voxel 0
    affine[:3, 3] = corner[:3] + affine[:3, :3] @ np.full(3, 0.5)
    return affine, shape


def write_grid(
    path_image: str | Path,
    path_mask: str | Path,
    tpl: nib.Nifti1Image,
    msk: nib.Nifti1Image,
    spacing_mm: float,
    margin_mm: float,
) -> None:
    """Write the template brain and mask on the analysis grid."""
    from brainsr.io import atomic_save_nifti

    affine, shape = analysis_grid(msk, spacing_mm, margin_mm)
    img = resample_to_grid(tpl, affine, shape, order=1)
    mask = resample_to_grid(msk, affine, shape, order=1, smooth=spacing_mm > 1.01)
    mask_data = (np.asarray(mask.dataobj) >= 0.5).astype(np.uint8)
    atomic_save_nifti(nib.Nifti1Image(np.asarray(img.dataobj) * mask_data, affine), path_image)
    atomic_save_nifti(nib.Nifti1Image(mask_data, affine), path_mask)
