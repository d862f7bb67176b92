"""Volumes on the analysis grid as (C, X, Y, Z) arrays, and their 2D slices (paper 3.2).

Each preprocessed scan set is three co-registered sequences on the template grid (RAS voxel axes: X left-right,
Y posterior-anterior, Z inferior-superior), stacked as channels: (C, X, Y, Z). The 2D models see slices along
one axis, (S, C, H, W), with H and W the two remaining axes in order. Slices are zero-padded to a size the
U-Net accepts: the next power of two per side (the paper) or the next multiple of ``2**depth`` (cheaper: 160 x 192
instead of 256 x 256 for the MNI152 2009 grid), centred, and cropped back after inference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from brainsr import AXES


class VolumeError(ValueError):
    """An input volume that cannot be used; the message names the file and the problem."""


def _axis(axis: str | int) -> int:
    if isinstance(axis, str):
        if axis not in AXES:
            raise ValueError(f"unknown slicing axis {axis!r}; expected one of {sorted(AXES)}")
        return AXES[axis]
    if axis not in (0, 1, 2):
        raise ValueError(f"slicing axis must be 0, 1 or 2, got {axis}")
    return int(axis)


def load_stack(paths: Sequence[str | Path]) -> tuple[np.ndarray, np.ndarray]:
    """Sequences on one grid stacked as channels: ((C, X, Y, Z) float32, 4x4 affine).

    Every file must be a finite 3D image on the same grid as the first (shape and affine), else
    :class:`VolumeError` names the file.
    """
    if not paths:
        raise ValueError("load_stack needs at least one image")
    arrays, affine, shape = [], None, None
    for path in paths:
        try:
            img = nib.load(str(path))
            data = np.asarray(img.dataobj, dtype=np.float32)
        except Exception as exc:  # nibabel raises several types for unreadable files
            raise VolumeError(f"{path}: cannot read image ({exc})") from exc
        if data.ndim != 3:
            raise VolumeError(f"{path}: expected a 3D image, got shape {data.shape}")
        if not np.isfinite(data).all():
            raise VolumeError(f"{path}: image has NaN or infinite voxels")
        if affine is None:
            affine, shape = img.affine, data.shape
        elif data.shape != shape or not np.allclose(img.affine, affine, atol=1e-3):
            raise VolumeError(f"{path}: not on the grid of {paths[0]} (shape {data.shape} vs {shape})")
        arrays.append(data)
    return np.stack(arrays), np.asarray(affine)


@dataclass
class ScanPair:
    """One subject's clinical input ``x`` and research target ``y`` (None at inference), (C, X, Y, Z) in [0, 1]."""

    subject: str
    x: np.ndarray
    y: np.ndarray | None
    affine: np.ndarray
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.x.ndim != 4:
            raise ValueError(f"sub-{self.subject}: input must be (C, X, Y, Z), got {self.x.shape}")
        if self.y is not None and self.y.shape != self.x.shape:
            raise ValueError(f"sub-{self.subject}: input {self.x.shape} and target {self.y.shape} differ in shape")
        if self.mask is not None and self.mask.shape != self.x.shape[1:]:
            raise ValueError(f"sub-{self.subject}: mask {self.mask.shape} does not match {self.x.shape[1:]}")


def load_pair(
    subject: str,
    clinical: Sequence[str | Path],
    research: Sequence[str | Path] | None = None,
    mask: str | Path | None = None,
) -> ScanPair:
    """Load a subject's clinical (input) and research (target) sequences, both on the template grid."""
    x, affine = load_stack(clinical)
    y = None
    if research:
        y, affine_y = load_stack(research)
        if y.shape != x.shape or not np.allclose(affine, affine_y, atol=1e-3):
            raise VolumeError(f"{research[0]}: research scan is not on the grid of the clinical scan {clinical[0]}")
    m = None
    if mask is not None:
        m_stack, _ = load_stack([mask])
        m = m_stack[0] > 0.5
        if m.shape != x.shape[1:]:
            raise VolumeError(f"{mask}: mask shape {m.shape} does not match the scans {x.shape[1:]}")
    return ScanPair(subject, x, y, affine, m)


def to_slices(volume: np.ndarray, axis: str | int = "axial") -> np.ndarray:
    """(C, X, Y, Z) -> (S, C, H, W) along ``axis``; H, W are the two other voxel axes in order."""
    return np.moveaxis(volume, 1 + _axis(axis), 0)


def from_slices(slices: np.ndarray, axis: str | int = "axial") -> np.ndarray:
    """Inverse of :func:`to_slices`: (S, C, H, W) -> (C, X, Y, Z)."""
    return np.moveaxis(slices, 0, 1 + _axis(axis))


def padded_size(shape: Sequence[int], pad: str | int = 16) -> tuple[int, int]:
    """Padded (H, W): ``"pow2"`` -> next power of two per side (paper 3.2); an int ``m`` -> next multiple of m."""
    h, w = int(shape[-2]), int(shape[-1])
    if pad == "pow2":
        return (1 << (h - 1).bit_length(), 1 << (w - 1).bit_length())
    m = int(pad)
    if m < 1:
        raise ValueError(f"pad multiple must be >= 1, got {pad}")
    return (-(-h // m) * m, -(-w // m) * m)


def _offsets(shape: Sequence[int], size: Sequence[int]) -> tuple[int, int]:
    return ((size[0] - shape[-2]) // 2, (size[1] - shape[-1]) // 2)


def pad_hw(array: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Zero-pad the last two axes of ``array`` to ``size`` (centred; the odd pixel goes to the end)."""
    h, w = array.shape[-2:]
    if size[0] < h or size[1] < w:
        raise ValueError(f"cannot pad {(h, w)} to the smaller size {tuple(size)}")
    top, left = _offsets(array.shape, size)
    widths = [(0, 0)] * (array.ndim - 2) + [(top, size[0] - h - top), (left, size[1] - w - left)]
    return np.pad(array, widths)


def crop_hw(array: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`pad_hw`: crop the last two axes back to ``shape`` (H, W)."""
    top, left = _offsets(shape, array.shape[-2:])
    return array[..., top : top + shape[-2], left : left + shape[-1]]
