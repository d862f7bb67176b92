"""Display helpers shared by every figure of the package (preprocessing QC, evaluation figures, upsampling QC,
the rating sheets): grey-level windows, orthogonal slices of RAS volumes at their physical aspect.

Pure numpy; the axes passed in are matplotlib ``Axes``, so this module imports no plotting library itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

__all__ = ["VIEWS", "display_window", "mask_centre", "orthogonal_slices", "plain_axes", "show_slice", "slice_aspect"]

#: Index of each view in :func:`orthogonal_slices`.
VIEWS = {"axial": 0, "coronal": 1, "sagittal": 2}


def display_window(data: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Grey-level window (1st-99.5th percentile inside the mask) for displaying an image."""
    vals = data[mask] if mask.any() else data.ravel()
    lo, hi = np.percentile(vals, [1, 99.5]) if vals.size else (0.0, 1.0)
    return float(lo), float(hi if hi > lo else lo + 1)


def orthogonal_slices(data: np.ndarray, centre: tuple[int, int, int]) -> list[np.ndarray]:
    """Axial, coronal and sagittal slices of a RAS-oriented volume, transposed for ``origin='lower'`` display."""
    i, j, k = centre
    return [data[:, :, k].T, data[:, j, :].T, data[i, :, :].T]


def mask_centre(mask: np.ndarray) -> tuple[int, int, int]:
    """Voxel nearest the centre of mass of a mask (the middle of the grid for an empty mask)."""
    c = ndi.center_of_mass(mask) if mask.any() else np.array(mask.shape) / 2
    return tuple(round(float(v)) for v in c)


def slice_aspect(zooms: Sequence[float], view: str) -> float:
    """Pixel aspect (height / width) of a slice of :func:`orthogonal_slices` in ``view``, from the voxel sizes."""
    return [zooms[1] / zooms[0], zooms[2] / zooms[0], zooms[2] / zooms[1]][VIEWS[view]]


def plain_axes(ax) -> None:
    """No ticks: image panels carry their meaning in titles and labels."""
    ax.set_xticks([])
    ax.set_yticks([])


def show_slice(ax, volume: np.ndarray, centre: tuple[int, int, int], view: str, zooms: Sequence[float], **style):
    """One slice of ``volume`` through ``centre`` in ``view``, at its physical aspect, without ticks."""
    im = ax.imshow(
        orthogonal_slices(volume, centre)[VIEWS[view]],
        origin="lower",
        aspect=slice_aspect(zooms, view),
        interpolation="nearest",
        **style,
    )
    plain_axes(ax)
    return im
