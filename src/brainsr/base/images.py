"""Reading and checking input images, their geometry, and a scoped temporary directory (the base layer: every
stage reads images through here).

ANTsPy (and FSL) write intermediate files into ``$TMPDIR`` and never delete them; :func:`scoped_tmpdir` points
``$TMPDIR`` (and :mod:`tempfile`) at a private directory and removes it afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import nibabel as nib
import numpy as np

__all__ = [
    "ImageInputError",
    "Loader",
    "check_array",
    "load_checked",
    "load_mask",
    "load_on_grid",
    "load_scan",
    "scoped_tmpdir",
    "zooms_mm",
]

#: Largest tolerated shear of a voxel-to-world affine (off-diagonal of the normalised Gram matrix).
MAX_SHEAR = 0.05
#: A scan must hold a head: at least this many voxels along every axis and this field of view (mm) along at
#: least two of them (an adult head is about 140 x 170 x 120 mm; a thick-slice clinical stack of 20 x 6 mm spans
#: 120 mm; a single-slab scan may be thin along one axis).
MIN_SCAN_VOXELS = 8
MIN_HEAD_FOV_MM = 80.0
#: Decimals (mm) of a scan's origin after reorientation: 1 um. A header re-stored in another axis order carries
#: float32 rounding of its origin (3e-6 mm on the tiny preset's oblique T2w and FLAIR), which the FLAIR -> T1w
#: mutual-information registration amplified (translations 0.008 mm apart, brain-edge voxels up to 0.85 apart).
ORIGIN_DECIMALS = 3


class ImageInputError(ValueError):
    """An input image that cannot be used; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@contextlib.contextmanager
def scoped_tmpdir(prefix: str = "brainsr-") -> Iterator[Path]:
    """Run the block with ``$TMPDIR`` (and :func:`tempfile.gettempdir`) set to a new directory, removed afterwards."""
    parent = os.environ.get("TMPDIR") or tempfile.gettempdir()
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    saved_env, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(path)
    tempfile.tempdir = str(path)
    try:
        yield path
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(path, ignore_errors=True)


def check_array(data: np.ndarray, path: str | os.PathLike) -> None:
    """Raise :class:`ImageInputError` unless ``data`` is a 3D, finite, non-constant image."""
    if data.ndim != 3:
        raise ImageInputError(path, f"expected a 3D image, got {data.ndim}D with shape {tuple(data.shape)}")
    if min(data.shape) < 2:
        raise ImageInputError(path, f"image has a degenerate shape {tuple(data.shape)}")
    finite = np.isfinite(data)
    if not finite.all():
        raise ImageInputError(path, f"{int((~finite).sum())} voxels are NaN or Inf")
    if not np.any(data):
        raise ImageInputError(path, "image is empty (all voxels are zero)")
    if float(data.max()) == float(data.min()):
        raise ImageInputError(path, f"image is constant ({float(data.max())})")


def _check_affine(affine: np.ndarray, path: str | os.PathLike) -> None:
    zooms = np.linalg.norm(affine[:3, :3], axis=0)
    if not np.all(np.isfinite(affine)) or np.any(zooms <= 1e-6):
        raise ImageInputError(path, f"degenerate voxel-to-world affine (voxel sizes {np.round(zooms, 4).tolist()})")
    cols = affine[:3, :3] / zooms
    gram = cols.T @ cols
    shear = float(np.max(np.abs(gram - np.eye(3))))
    if shear > MAX_SHEAR:
        raise ImageInputError(path, f"affine has shear {shear:.3f} beyond the tolerance {MAX_SHEAR}")


def _read(path: str | os.PathLike) -> tuple[nib.Nifti1Image, np.ndarray]:
    """The image as stored (header kept) and its data fully read as float32 and checked (:func:`check_array`)."""
    path = Path(path)
    if not path.exists():
        raise ImageInputError(path, "file does not exist")
    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj, dtype=np.float32)
    except (OSError, EOFError, ValueError, zlib.error, nib.filebasedimages.ImageFileError) as exc:
        raise ImageInputError(path, f"cannot be read as NIfTI ({type(exc).__name__}: {exc})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    check_array(data, path)
    return img, data


def load_checked(path: str | os.PathLike) -> nib.Nifti1Image:
    """Load a NIfTI image, fully read its data and check it (3D, finite, non-empty, sane affine).

    Returns a float32 image whose header carries no free-text fields of the input.
    """
    img, data = _read(path)
    _check_affine(img.affine, path)
    return nib.Nifti1Image(data, img.affine)


def _check_orientation(img: nib.spatialimages.SpatialImage, path: str | os.PathLike) -> None:
    """A usable voxel-to-world orientation: qform or sform set, finite positive voxel sizes in the header.

    The header is read again as stored: nibabel's loader silently sets zero voxel sizes to 1.
    """
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        raise ImageInputError(path, f"{type(img).__name__} has no usable orientation (expected NIfTI)")
    with nib.openers.ImageOpener(str(path)) as fh:
        header = type(img.header).from_fileobj(fh, check=False)
    if int(header["qform_code"]) == 0 and int(header["sform_code"]) == 0:
        raise ImageInputError(path, "header has no usable orientation (qform_code and sform_code are both 0)")
    pixdim = np.asarray(header["pixdim"][1:4], dtype=float)
    if not np.all(np.isfinite(pixdim)) or np.any(pixdim <= 0):
        raise ImageInputError(path, f"voxel sizes {pixdim.tolist()} in the header are not finite and positive")


def _check_head_size(img: nib.Nifti1Image, path: str | os.PathLike) -> None:
    """Refuse a volume too small to hold a head (:data:`MIN_SCAN_VOXELS`, :data:`MIN_HEAD_FOV_MM`)."""
    shape = np.asarray(img.shape[:3])
    fov = shape * np.linalg.norm(img.affine[:3, :3], axis=0)
    if shape.min() < MIN_SCAN_VOXELS or np.sort(fov)[1] < MIN_HEAD_FOV_MM:
        raise ImageInputError(
            path,
            f"volume {tuple(int(n) for n in shape)} voxels, field of view {np.round(fov, 1).tolist()} mm is too "
            f"small to hold a head (a scan needs >= {MIN_SCAN_VOXELS} voxels per axis and >= {MIN_HEAD_FOV_MM:g} mm "
            "along two axes)",
        )


def load_scan(path: str | os.PathLike) -> nib.Nifti1Image:
    """A raw scan, checked (:func:`load_checked`, orientation, head size) and reoriented to RAS+ (as fMRIPrep).

    Reorientation is a lossless permutation and flip of the voxel axes, and the origin is rounded to 1 um
    (:data:`ORIGIN_DECIMALS`), so the result does not depend on how the scan was stored (LPS, RAS, sagittal
    slices, float32 rounding of a re-stored header): every later step sees the same array on the same grid.
    """
    img, data = _read(path)
    _check_orientation(img, path)
    _check_affine(img.affine, path)
    _check_head_size(img, path)
    canonical = nib.as_closest_canonical(nib.Nifti1Image(data, img.affine))
    data = np.ascontiguousarray(np.asarray(canonical.dataobj, dtype=np.float32))
    affine = canonical.affine.copy()
    affine[:3, 3] = np.round(affine[:3, 3], ORIGIN_DECIMALS)  # storage noise of the origin cannot matter
    return nib.Nifti1Image(data, affine)


def zooms_mm(img: nib.Nifti1Image) -> tuple[float, float, float]:
    """Voxel sizes (mm) of the first three axes."""
    return tuple(float(z) for z in img.header.get_zooms()[:3])


#: What reads an image for the evaluation functions: :func:`load_checked`, or a memo of it (one scan set's job).
Loader = Callable[[str | os.PathLike], nib.Nifti1Image]


def load_on_grid(
    path: str | os.PathLike, ref: nib.Nifti1Image, ref_name: str | os.PathLike, load: Loader = load_checked
) -> nib.Nifti1Image:
    """``load(path)`` (:func:`load_checked`), then an :class:`ImageInputError` unless the image is on ``ref``'s grid."""
    img = load(path)
    if img.shape != ref.shape or not np.allclose(img.affine, ref.affine, atol=1e-3):
        raise ImageInputError(path, f"grid {img.shape} differs from {ref_name} {ref.shape} (not on one analysis grid)")
    return img


def load_mask(path: str | os.PathLike, load: Loader = load_checked) -> tuple[np.ndarray, nib.Nifti1Image]:
    """A brain mask (voxels > 0.5) and its image (read by ``load``); an :class:`ImageInputError` if it is empty."""
    img = load(path)
    mask = np.asarray(img.dataobj) > 0.5
    if not mask.any():
        raise ImageInputError(path, "the brain mask is empty")
    return mask, img
