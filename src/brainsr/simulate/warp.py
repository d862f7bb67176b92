"""Scanner points -> template voxels of one subject, evaluated only where the head can be.

An image point is mapped to the template by the inverse head pose, the subject's deformation (trilinear
interpolation of a coarse coordinate field, :class:`~brainsr.simulate.anatomy.Deformation`) and the template's
voxel affine. Trilinear interpolation stays inside the bounding box of a cell's eight corner values, so a coarse
cell whose box (plus a margin) holds no head voxel can only send its points to air, where every map sampled here
(signal, labels, intracranial mask) is exactly 0. :class:`HeadWarp` skips those points; the others get the very same
floating-point operations as a full evaluation, so the results are bit-identical.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence
from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi
from threadpoolctl import ThreadpoolController

from brainsr.simulate.anatomy import Anatomy, Deformation

#: Extra template voxels around each cell's box: covers the 2x2x2 trilinear footprint and rounding.
MARGIN_VOX = 2
#: Points per block of :meth:`HeadWarp.sample` (temporaries of about 12 MB, reused by the allocator).
BLOCK = 1 << 19


@lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run BLAS on one thread: the (N, 3) x (3, 3) products of coordinate transforms gain nothing from threads
    (their per-element result does not depend on the thread count) and the idle threads spin on busy cores."""
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


def box_counts(support: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Number of True voxels of ``support`` in each box [lo, hi) (index arrays (..., 3), clipped to the grid),
    from a summed-area table."""
    shape = np.array(support.shape)
    table = np.zeros(tuple(shape + 1), np.int32)
    table[1:, 1:, 1:] = support.cumsum(0, dtype=np.int32).cumsum(1).cumsum(2)
    lo = np.clip(lo, 0, shape)
    hi = np.clip(hi, lo, shape)
    total = np.zeros(lo.shape[:-1], np.int64)
    for corner in itertools.product((0, 1), repeat=3):
        idx = tuple(np.where(c, hi[..., a], lo[..., a]) for a, c in enumerate(corner))
        total += (-1) ** (3 - sum(corner)) * table[idx]
    return total


def active_cells(field_vox: np.ndarray, support: np.ndarray, margin: int = MARGIN_VOX) -> np.ndarray:
    """Cells of a coarse field of template voxel coordinates (X, Y, Z, 3) whose corner bounding box, widened by
    ``margin`` voxels, contains a ``support`` voxel; dilated by one cell. Shape (X - 1, Y - 1, Z - 1)."""
    sx, sy, sz = (n - 1 for n in field_vox.shape[:3])
    corners = [field_vox[a : a + sx, b : b + sy, c : c + sz] for a, b, c in itertools.product((0, 1), repeat=3)]
    lo = np.floor(np.minimum.reduce(corners)).astype(np.int64) - margin
    hi = np.ceil(np.maximum.reduce(corners)).astype(np.int64) + margin + 1
    return ndi.binary_dilation(box_counts(support, lo, hi) > 0, np.ones((3, 3, 3), bool))


class HeadWarp:
    """Scanner mm -> template voxel mapping of one subject for the points that may land in the head."""

    def __init__(self, anat: Anatomy, deform: Deformation) -> None:
        self.anat = anat
        self.deform = deform
        field_vox = anat.tm.voxel(deform.forward.reshape(-1, 3)).reshape(deform.forward.shape)
        self.cells = active_cells(field_vox, anat.icv | (anat.head > 0))

    def _may_hit(self, ijk: np.ndarray) -> np.ndarray:
        """Whether points at forward-grid indices ``ijk`` (N, 3) fall in an active cell (clamped like the field)."""
        n = self.cells.shape
        flat = np.zeros(len(ijk), np.intp)
        for a in range(3):
            cell = np.floor(ijk[:, a])
            np.clip(cell, 0, n[a] - 1, out=cell)
            flat *= n[a]
            flat += cell.astype(np.intp)
        return self.cells.ravel()[flat]

    def lookup(self, pose: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(indices of the scanner points (N, 3) that may land in the head, their template voxels (3, K)) for a
        subject-frame -> scanner ``pose``."""
        deform = self.deform
        with single_blas_thread():
            inv = np.linalg.inv(pose)
            subj = pts @ inv[:3, :3].T + inv[:3, 3]
            ijk = Deformation.grid_coords(deform.forward_affine, np.asarray(subj, np.float32))
            idx = np.flatnonzero(self._may_hit(ijk))
            vox = self.anat.tm.voxel(Deformation.interpolate(deform.forward, ijk[idx])).T
        return idx, vox

    def sample(self, images: Sequence[np.ndarray], pose: np.ndarray, pts: np.ndarray, order: int) -> list[np.ndarray]:
        """``images`` (template grid, 0 outside the head) at scanner points (N, 3): spline ``order`` 0 or 1,
        0 outside the grid (as ``ndimage.map_coordinates`` with ``mode="constant"``). Points are processed in
        blocks (each point's value does not depend on the others), so that temporaries stay small."""
        out = [np.zeros(len(pts), image.dtype) for image in images]
        for start in range(0, len(pts), BLOCK):
            idx, vox = self.lookup(pose, pts[start : start + BLOCK])
            for values, image in zip(out, images, strict=True):
                values[start + idx] = ndi.map_coordinates(image, vox, order=order, cval=0, mode="constant")
        return out
