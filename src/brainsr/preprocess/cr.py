"""Linear registration by the correlation ratio (CR), standing in for FSL FLIRT's default cost.

Li et al. 2022, section 3.1, align every scan to a template by a rigid (6 dof) and an affine (12 dof) transform
"using trilinear interpolation and the correlation ratio as cost function". ANTs has no CR metric, so this module
implements the registration itself:

* the cost is ``1 - eta^2(moving | fixed)``, the correlation ratio of Roche et al. (1998) as used by FLIRT
  (Jenkinson & Smith 2001): with the fixed (reference) intensities binned into ``K`` equal-width bins,
  ``eta^2 = 1 - sum_k n_k var_k(Y) / (N var(Y))``, ``Y`` the moving intensities at the same points;
* the fixed image is sampled on a grid (inside a dilated brain mask when one is given), the points are mapped
  through ``x_m = A (x_f - c) + c + t`` into the moving image and sampled trilinearly;
* coarse to fine over Gaussian-smoothed, subsampled copies of both images (8, 4, 2 mm by default), a rotation
  search at the coarsest level and Powell's method at every level (for 12 dof, rigid, then 7 dof similarity,
  then full affine at the coarsest level, as FLIRT also raises the degrees of freedom step by step).

All geometry is in ANTs physical space (LPS mm). The returned ``ants`` AffineTransform maps *fixed* physical points
to *moving* physical points (ITK: ``T(x) = A (x - c) + c + t``), which is what
``ants.apply_transforms(fixed=fixed, moving=moving, transformlist=[path])`` needs to resample the moving image onto
the fixed grid, and what ``ants.apply_transforms_to_points(3, fixed_points, [path])`` applies to points.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage, optimize

import brainsr.preprocess.itk  # noqa: F401  (one ITK thread, set before ants is imported)

if TYPE_CHECKING:
    import ants

__all__ = [
    "affine_from_transform",
    "correlation_ratio",
    "mean_displacement",
    "read_affine",
    "register_cr",
    "transform_from_affine",
    "transform_points",
    "write_affine",
]

#: Rotation angles (degrees, about each axis) tried at the coarsest level before the first Powell run.
SEARCH_ANGLES_DEG = (-20.0, -10.0, 0.0, 10.0, 20.0)
#: Number of best search candidates refined by Powell at the coarsest level.
SEARCH_KEEP = 3
#: Below this (weighted) fraction of fixed sample points inside the moving field of view the cost is 1 + deficit.
MIN_OVERLAP = 0.2
#: Gaussian smoothing to a level of spacing ``s`` mm: sigma = SMOOTH * sqrt(s^2 - voxel^2) mm.
SMOOTH = 0.5
#: Powell evaluation budget per run at the coarsest, intermediate and finest levels (cost per evaluation grows
#: with the number of sample points, ~8x per halving of the level spacing; the finest level starts close).
MAXFEV_COARSE, MAXFEV_MID, MAXFEV_FINE = 1500, 800, 400

_EPS = 1e-12


# --------------------------------------------------------------------------------------------------- the cost


def _bin_index(values: np.ndarray, bins: int, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Equal-width bin of each value over ``[lo, hi]`` (default: the values' range), as int64 in ``[0, bins)``."""
    lo = float(values.min()) if lo is None else lo
    hi = float(values.max()) if hi is None else hi
    if not hi > lo:
        return np.zeros(values.shape, dtype=np.int64)
    idx = np.floor((values - lo) * (bins / (hi - lo))).astype(np.int64)
    return np.clip(idx, 0, bins - 1)


def _eta2_from_bins(
    idx: np.ndarray, y: np.ndarray, bins: int, counts: np.ndarray | None = None, weights: np.ndarray | None = None
) -> float:
    """``eta^2 = 1 - sum_k n_k var_k(y) / (N var(y))`` for points grouped by ``idx`` (0 when ``y`` is constant).

    ``counts``: the per-bin counts ``n_k`` of ``idx`` when already known; ``weights``: per-point weights (then
    ``n_k``, the means and variances are weighted ones).
    """
    if weights is None:
        n = np.bincount(idx, minlength=bins).astype(np.float64) if counts is None else counts
        s1 = np.bincount(idx, weights=y, minlength=bins)
        s2 = float(np.square(y, dtype=np.float64).sum())  # not np.dot: BLAS thread wake-ups cost milliseconds
    else:
        wy = weights * y
        n = np.bincount(idx, weights=weights, minlength=bins)
        s1 = np.bincount(idx, weights=wy, minlength=bins)
        s2 = float(np.multiply(wy, y, dtype=np.float64).sum())
    total = float(n.sum())
    if total <= 0:
        return 0.0
    occupied = n > 0
    between = float(np.sum(s1[occupied] ** 2 / n[occupied]))  # sum_k n_k mean_k^2
    var_total = s2 - float(s1.sum()) ** 2 / total  # N var(y)
    if var_total <= _EPS * max(s2, 1.0):
        return 0.0
    within = max(s2 - between, 0.0)  # sum_k n_k var_k(y)
    return float(min(max(1.0 - within / var_total, 0.0), 1.0))


def correlation_ratio(
    reference: np.ndarray, floating: np.ndarray, bins: int = 64, mask: np.ndarray | None = None
) -> float:
    """Correlation ratio ``eta^2(floating | reference)`` (Roche et al. 1998; Jenkinson & Smith 2001).

    ``eta^2 = 1 - sum_k n_k var_k(floating) / (N var(floating))`` with the reference intensities binned into
    ``bins`` equal-width bins over their (masked) range, ``n_k`` and ``var_k`` the count and population variance
    of the floating intensities in bin ``k``. 1 when the floating image is a function of the (binned) reference,
    near 0 when independent of it; 0 by convention when the floating image is constant. The cost FLIRT minimises
    by default (paper section 3.1) is ``1 - eta^2``.
    """
    ref = np.asarray(reference, dtype=np.float64)
    flo = np.asarray(floating, dtype=np.float64)
    if ref.shape != flo.shape:
        raise ValueError(f"reference {ref.shape} and floating {flo.shape} differ in shape")
    if bins < 1:
        raise ValueError(f"bins must be positive, got {bins}")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != ref.shape:
            raise ValueError(f"mask {mask.shape} does not match the images {ref.shape}")
        ref, flo = ref[mask], flo[mask]
    ref, flo = ref.ravel(), flo.ravel()
    if ref.size == 0:
        raise ValueError("no points to compute the correlation ratio over")
    return _eta2_from_bins(_bin_index(ref, bins), flo, bins)


# ------------------------------------------------------------------------------------------- parameterisation


def _rotation(rv: np.ndarray) -> np.ndarray:
    """Rotation matrix of a rotation vector (axis * angle in radians), by Rodrigues' formula."""
    theta = float(np.linalg.norm(rv))
    if theta < 1e-12:
        return np.eye(3)
    k = rv / theta
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(theta) * kx + (1.0 - np.cos(theta)) * (kx @ kx)


def _rotvec(rot: np.ndarray) -> np.ndarray:
    """Rotation vector of a rotation matrix."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(rot).as_rotvec()


def _matrix(p: np.ndarray) -> np.ndarray:
    """3x3 linear part of the 12 parameters: ``A = R(p[3:6]) @ K(p[9:12]) @ diag(exp(p[6:9]))``.

    ``p = (t_x, t_y, t_z [mm], rotation vector [rad], log-scales, shears K_01, K_02, K_12)``.
    """
    shear = np.array([[1.0, p[9], p[10]], [0.0, 1.0, p[11]], [0.0, 0.0, 1.0]])
    return _rotation(p[3:6]) @ shear @ np.diag(np.exp(p[6:9]))


def _params(matrix: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_matrix` (QR decomposition): the 12 parameters of ``A``, ``t``."""
    q, u = np.linalg.qr(np.asarray(matrix, dtype=np.float64))
    sign = np.sign(np.diag(u))
    sign[sign == 0] = 1.0
    q, u = q * sign, sign[:, None] * u
    if np.linalg.det(q) < 0 or np.any(np.diag(u) <= 0):
        raise ValueError("the initial transform is singular or contains a reflection")
    scales = np.diag(u).copy()
    shear = u / scales[None, :]
    return np.concatenate([translation, _rotvec(q), np.log(scales), [shear[0, 1], shear[0, 2], shear[1, 2]]])


# ------------------------------------------------------------------------------------------------- the images


@dataclass
class _Grid:
    """Voxel grid in physical space: ``x = origin + direction @ (spacing * ijk)``."""

    origin: np.ndarray
    spacing: np.ndarray
    direction: np.ndarray
    shape: tuple[int, ...]

    @classmethod
    def of(cls, img: ants.ANTsImage) -> _Grid:
        if img.dimension != 3 or img.components != 1:
            raise ValueError(f"expected a 3D scalar image, got dimension {img.dimension}, {img.components} components")
        return cls(
            np.asarray(img.origin, dtype=np.float64),
            np.asarray(img.spacing, dtype=np.float64),
            np.asarray(img.direction, dtype=np.float64).reshape(3, 3),
            tuple(int(s) for s in img.shape),
        )

    def points(self, ijk: np.ndarray) -> np.ndarray:
        """Physical points (3, N) of voxel indices (3, N)."""
        return self.origin[:, None] + self.direction @ (self.spacing[:, None] * ijk)

    def to_index(self) -> tuple[np.ndarray, np.ndarray]:
        """``W``, ``origin`` with voxel index ``= W @ (x - origin)``."""
        return np.diag(1.0 / self.spacing) @ np.linalg.inv(self.direction), self.origin


def _pyramid(
    arr: np.ndarray, spacing: np.ndarray, levels: tuple[float, ...], factor: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Smoothed, subsampled copies of ``arr`` for each level, as (array, cumulative integer stride).

    ``factor`` 1 for the fixed image (sample points about ``s`` apart), 0.5 for the moving image (interpolated
    from a grid twice as fine as the sampling).

    Level ``s`` is smoothed to sigma ``SMOOTH * sqrt(s^2 - spacing^2)`` mm per axis and subsampled to a spacing
    at most ``factor * s``; the levels are built as a cascade from fine to coarse so the full-size array is only
    filtered once.
    """
    out: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    cur = arr.astype(np.float32, copy=False)
    cur_sp = spacing.astype(np.float64).copy()
    stride = np.ones(3, dtype=np.int64)
    done_sigma = np.zeros(3)
    for s in sorted(levels):
        target = SMOOTH * np.sqrt(np.maximum(s**2 - spacing**2, 0.0))
        add = np.sqrt(np.maximum(target**2 - done_sigma**2, 0.0))
        if np.any(add > 0):
            cur = ndimage.gaussian_filter(cur, sigma=add / cur_sp, mode="nearest", truncate=3.0)
        done_sigma = np.maximum(done_sigma, target)
        step = np.maximum(np.floor(factor * s / cur_sp + 1e-6).astype(np.int64), 1)
        cur = np.ascontiguousarray(cur[:: step[0], :: step[1], :: step[2]])
        cur_sp = cur_sp * step
        stride = stride * step
        out[s] = (cur, stride.copy())
    return [out[s] for s in levels]


@dataclass
class _Level:
    """Everything one cost evaluation needs at one resolution level."""

    spacing_mm: float
    rel_points: np.ndarray  # (3, N) fixed sample points minus the centre, physical mm
    bin_idx: np.ndarray  # (N,) bin of the fixed intensity at each point
    moving: np.ndarray  # smoothed, subsampled, intensity-normalised moving image
    w: np.ndarray  # physical -> moving voxel index, linear part
    m_origin: np.ndarray
    bins: int
    centre: np.ndarray
    evaluations: int = 0
    counts: np.ndarray | None = None  # per-bin counts of all points
    ramp: np.ndarray = field(default_factory=lambda: np.ones(3))  # edge ramp width per moving axis (voxels)

    def _voxels(self, p: np.ndarray) -> np.ndarray:
        """Moving voxel coordinates (3, N) of the sample points under parameters ``p``."""
        lin = self.w @ _matrix(p)
        off = self.w @ (self.centre + p[:3] - self.m_origin)
        v = np.einsum("ij,jn->in", lin, self.rel_points)  # much faster than BLAS for a 3 x 3 by 3 x N product
        v += off[:, None]
        return v

    def reorder(self, p: np.ndarray) -> None:
        """Sort the sample points by their moving-image memory address under ``p`` (cache-friendly sampling)."""
        v = np.clip(np.rint(self._voxels(p)), 0, np.array(self.moving.shape)[:, None] - 1).astype(np.int64)
        order = np.argsort(np.ravel_multi_index(tuple(v), self.moving.shape), kind="stable")
        self.rel_points = np.ascontiguousarray(self.rel_points[:, order])
        self.bin_idx = self.bin_idx[order]
        self.counts = np.bincount(self.bin_idx, minlength=self.bins).astype(np.float64)

    def cost(self, p: np.ndarray) -> float:
        """``1 - eta^2`` over the sample points that fall inside the moving image (1 + deficit below MIN_OVERLAP).

        Points are weighted down linearly over the last ``ramp`` voxels before the moving image's edge so that
        the cost stays continuous while points enter or leave its field of view.
        """
        self.evaluations += 1
        v = self._voxels(p)
        shape = self.moving.shape
        w = None
        for a in range(3):  # weights only along axes where some point comes near an edge
            if v[a].min() < self.ramp[a] - 0.5 or v[a].max() > shape[a] - 0.5 - self.ramp[a]:
                wa = np.clip((v[a] + 0.5) / self.ramp[a], 0.0, 1.0)
                wa *= np.clip((shape[a] - 0.5 - v[a]) / self.ramp[a], 0.0, 1.0)
                w = wa if w is None else w * wa
        if w is not None:
            frac = float(w.sum()) / w.size
            if frac < MIN_OVERLAP:
                return 1.0 + (MIN_OVERLAP - frac)
        # points outside sample the clamped edge value but carry zero weight
        y = ndimage.map_coordinates(self.moving, v, order=1, mode="nearest", prefilter=False)
        if w is None:  # the usual case: every point well inside
            return 1.0 - _eta2_from_bins(self.bin_idx, y, self.bins, self.counts)
        return 1.0 - _eta2_from_bins(self.bin_idx, y, self.bins, weights=w)


def _centre_of_mass(grid: _Grid, weights: np.ndarray) -> np.ndarray:
    """Physical centre of mass of non-negative voxel weights."""
    w = np.clip(weights, 0, None).astype(np.float64)
    if w.sum() <= 0:
        w = np.ones_like(w)
    com = np.asarray(ndimage.center_of_mass(w), dtype=np.float64)
    return grid.points(com[:, None])[:, 0]


# ------------------------------------------------------------------------------------------------- optimiser


def _basis(mode: str, radius: float) -> np.ndarray:
    """12 x m matrix mapping scaled optimiser steps to parameter changes (1 unit ~ 1 mm at ``radius``)."""
    scale = np.r_[np.ones(3), np.full(9, 1.0 / radius)]
    if mode == "rigid":
        cols = [np.eye(12)[i] * scale[i] for i in range(6)]
    elif mode == "similarity":
        cols = [np.eye(12)[i] * scale[i] for i in range(6)] + [np.r_[np.zeros(6), np.ones(3), np.zeros(3)] / radius]
    elif mode == "affine":
        cols = [np.eye(12)[i] * scale[i] for i in range(12)]
    else:  # pragma: no cover - internal
        raise ValueError(mode)
    return np.stack(cols, axis=1)


def _powell(level: _Level, p0: np.ndarray, mode: str, radius: float, maxfev: int) -> tuple[np.ndarray, float]:
    """Minimise the level's cost over ``mode``'s parameters from ``p0`` with Powell's method."""
    basis = _basis(mode, radius)
    m = basis.shape[1]
    step = max(level.spacing_mm / 2.0, 0.5)

    def f(u: np.ndarray) -> float:
        return level.cost(p0 + basis @ u)

    res = optimize.minimize(
        f,
        np.zeros(m),
        method="Powell",
        options={
            "direc": np.eye(m) * step,
            "xtol": 0.01 * level.spacing_mm,
            "ftol": 1e-5,
            "maxfev": maxfev,
        },
    )
    p = p0 + basis @ np.asarray(res.x)
    fp = float(res.fun)
    f0 = level.cost(p0)
    return (p, fp) if fp <= f0 else (p0, f0)


def _rotation_search(level: _Level, p0: np.ndarray) -> list[np.ndarray]:
    """Starting points from a grid of rotations about the centre (best first, ``SEARCH_KEEP`` of them)."""
    r0 = _rotation(p0[3:6])
    tried = []
    for ax in SEARCH_ANGLES_DEG:
        for ay in SEARCH_ANGLES_DEG:
            for az in SEARCH_ANGLES_DEG:
                r = _rotation(np.deg2rad([ax, 0, 0])) @ _rotation(np.deg2rad([0, ay, 0]))
                r = r @ _rotation(np.deg2rad([0, 0, az])) @ r0
                p = p0.copy()
                p[3:6] = _rotvec(r)
                tried.append((level.cost(p), p))
    tried.sort(key=lambda cp: cp[0])
    return [p for _, p in tried[:SEARCH_KEEP]]


# ------------------------------------------------------------------------------------------------ ANTs glue


def transform_from_affine(matrix: np.ndarray, translation: np.ndarray, center: np.ndarray) -> ants.ANTsTransform:
    """ANTs AffineTransform ``T(x) = matrix (x - center) + center + translation`` (ITK convention, physical mm)."""
    import ants

    return ants.create_ants_transform(
        transform_type="AffineTransform",
        precision="double",
        dimension=3,
        parameters=np.r_[np.asarray(matrix, dtype=np.float64).ravel(), np.asarray(translation, dtype=np.float64)],
        fixed_parameters=np.asarray(center, dtype=np.float64),
    )


def affine_from_transform(transform: ants.ANTsTransform) -> np.ndarray:
    """4x4 homogeneous matrix of an ANTs affine-family transform (the point mapping ``x -> A x + b``)."""
    params = np.asarray(transform.parameters, dtype=np.float64)
    centre = np.asarray(transform.fixed_parameters, dtype=np.float64)
    if params.size != 12 or centre.size != 3:
        raise ValueError(f"not a 3D matrix-offset transform ({transform.transform_type})")
    a = params[:9].reshape(3, 3)
    out = np.eye(4)
    out[:3, :3] = a
    out[:3, 3] = params[9:] + centre - a @ centre
    return out


def write_affine(transform: ants.ANTsTransform, path: str | os.PathLike) -> Path:
    """Write an ANTs transform (``.mat``, ITK binary) for ``ants.apply_transforms``; returns the path."""
    import ants

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ants.write_transform(transform, str(path))
    return path


def read_affine(path: str | os.PathLike) -> np.ndarray:
    """4x4 matrix (fixed LPS mm -> moving LPS mm) of an affine transform file written by :func:`write_affine`."""
    import ants

    return affine_from_transform(ants.read_transform(str(path)))


def transform_points(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 matrix to physical points (N, 3)."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ affine[:3, :3].T + affine[:3, 3]


def mean_displacement(affine_a: np.ndarray, affine_b: np.ndarray, points: np.ndarray) -> float:
    """Mean distance (mm) between two point mappings over physical points (N, 3)."""
    diff = transform_points(affine_a, points) - transform_points(affine_b, points)
    return float(np.linalg.norm(diff, axis=1).mean())


# ------------------------------------------------------------------------------------------------ registration


def _levels(
    fixed: ants.ANTsImage,
    moving: ants.ANTsImage,
    fmask: np.ndarray | None,
    centre: np.ndarray,
    levels_mm: tuple[float, ...],
    bins: int,
) -> list[_Level]:
    """Sample points, fixed-intensity bins and smoothed moving image for each level (section 3.1 pyramid)."""
    fgrid, mgrid = _Grid.of(fixed), _Grid.of(moving)
    farr = fixed.numpy().astype(np.float32)
    marr = moving.numpy().astype(np.float32)
    hi = float(np.percentile(marr[marr > 0], 99.5)) if np.any(marr > 0) else float(np.abs(marr).max())
    marr /= max(hi, _EPS)  # keeps the CR sums well scaled; CR itself is invariant to this
    fpyr = _pyramid(farr, fgrid.spacing, levels_mm, 1.0)
    mpyr = _pyramid(marr, mgrid.spacing, levels_mm, 0.5)
    del farr, marr
    w0, m_origin = mgrid.to_index()
    out = []
    for s, (fa, fstride), (ma, mstride) in zip(levels_mm, fpyr, mpyr, strict=True):
        if fmask is not None:
            sel = fmask[:: fstride[0], :: fstride[1], :: fstride[2]]
            sel = ndimage.binary_dilation(sel, iterations=1)
        else:
            sel = np.ones(fa.shape, dtype=bool)
        ijk = np.nonzero(sel)
        values = fa[ijk]
        idx = np.stack(ijk).astype(np.float64) * fstride[:, None]
        rel = fgrid.points(idx) - centre[:, None]
        w = np.diag(1.0 / mstride) @ w0  # index in the subsampled array = full-res index / stride
        level = _Level(float(s), np.ascontiguousarray(rel), _bin_index(values, bins), ma, w, m_origin, bins, centre)
        level.ramp = np.maximum(s / (mgrid.spacing * mstride), 1.0)
        out.append(level)
    return out


def _fixed_centre(
    fixed: ants.ANTsImage, fgrid: _Grid, fixed_mask: ants.ANTsImage | None
) -> tuple[np.ndarray | None, np.ndarray]:
    """The fixed sampling mask (checked against the fixed grid; ``None`` without one) and the centre of the
    transform: the mask's centre of mass, else the fixed image's intensity-weighted one."""
    fmask = None
    if fixed_mask is not None:
        fmask = fixed_mask.numpy() > 0
        if fmask.shape != fgrid.shape:
            raise ValueError(f"fixed_mask shape {fmask.shape} differs from the fixed image's {fgrid.shape}")
        if not fmask.any():
            raise ValueError("fixed_mask is empty")
        centre = _centre_of_mass(fgrid, fmask.astype(np.float32))
    else:
        centre = _centre_of_mass(fgrid, fixed.numpy())
    return fmask, centre


def _initial_params(
    moving: ants.ANTsImage, mgrid: _Grid, centre: np.ndarray, dof: int, initial: np.ndarray | None
) -> np.ndarray:
    """Starting parameters: ``initial`` about ``centre`` (for ``dof=6`` without its scales and shears), else the
    translation that matches ``centre`` to the moving image's intensity-weighted centre of mass."""
    if initial is None:
        p = np.zeros(12)
        p[:3] = _centre_of_mass(mgrid, moving.numpy()) - centre
    else:
        init = np.asarray(initial, dtype=np.float64)
        if init.shape != (4, 4):
            raise ValueError(f"initial must be a 4x4 matrix, got shape {init.shape}")
        a0, b0 = init[:3, :3], init[:3, 3]
        p = _params(a0, a0 @ centre + b0 - centre)
        if dof == 6:
            p[6:] = 0.0
    return p


def _coarse_to_fine(levels: list[_Level], p: np.ndarray, dof: int, search: bool) -> tuple[np.ndarray, list[float]]:
    """Powell's method level by level, from ``p``: at the coarsest level after a rotation search (``search``) and,
    for ``dof=12``, through rigid, similarity and affine. Returns the parameters and the final cost per level."""
    costs = []
    for n, level in enumerate(levels):
        level.reorder(p)
        radius = float(np.sqrt(np.mean(np.sum(level.rel_points**2, axis=0))))
        radius = max(radius, 10.0)
        if n == 0:
            starts = _rotation_search(level, p) if search else [p]
            runs = [_powell(level, s, "rigid", radius, MAXFEV_COARSE) for s in starts]
            p, c = min(runs, key=lambda pc: pc[1])
            if dof == 12:
                p, c = _powell(level, p, "similarity", radius, MAXFEV_COARSE)
                p, c = _powell(level, p, "affine", radius, MAXFEV_COARSE)
        else:
            maxfev = MAXFEV_FINE if n == len(levels) - 1 else MAXFEV_MID
            p, c = _powell(level, p, "rigid" if dof == 6 else "affine", radius, maxfev)
        costs.append(c)
    return p, costs


def register_cr(
    fixed: ants.ANTsImage,
    moving: ants.ANTsImage,
    dof: int,
    *,
    fixed_mask: ants.ANTsImage | None = None,
    levels_mm: tuple[float, ...] = (8.0, 4.0, 2.0),
    bins: int = 64,
    initial: np.ndarray | None = None,
) -> tuple[ants.ANTsTransform, dict[str, Any]]:
    """Rigid (``dof=6``) or affine (``dof=12``) registration maximising the correlation ratio (paper section 3.1).

    Maximises ``eta^2(moving | fixed)`` (Roche et al. 1998; Jenkinson & Smith 2001: the fixed/template intensities
    binned into ``bins`` bins, ``eta^2 = 1 - sum_k n_k var_k / (N var)`` of the moving intensities), sampled on the
    fixed grid (inside ``fixed_mask`` dilated by one level voxel, if given) and trilinearly in the moving image,
    coarse to fine over ``levels_mm``. Points mapped outside the moving image are left out (weighted down over a
    one-level-voxel ramp at its edge); below ``MIN_OVERLAP`` of the points inside, the cost exceeds 1. Without
    ``fixed_mask`` every fixed voxel is sampled: like FLIRT's CR, the cost then favours transforms that keep large
    uniform backgrounds inside the moving field of view, so pass a (brain) mask for template registration.

    ``initial``: optional 4x4 matrix mapping fixed to moving physical (LPS) points; otherwise the translation
    matches the fixed mask's centre of mass to the moving image's intensity-weighted one and the coarsest level
    starts with a search over rotations (+-20 degrees about each axis, the best ``SEARCH_KEEP`` refined). For
    ``dof=6`` the scales and shears of ``initial`` are dropped (its rotation and its image of the centre are kept).

    Returns an ANTs AffineTransform mapping fixed physical points to moving physical points (pass it, written with
    :func:`write_affine`, as ``transformlist`` to ``ants.apply_transforms(fixed, moving, ...)``) and an info dict
    (``cost``: final ``1 - eta^2`` per level; ``evaluations``; ``seconds``; ``matrix``, ``translation``, ``center``
    of ``T(x) = matrix (x - center) + center + translation``; ``affine``: the same as a 4x4 matrix, LPS mm).
    """
    if dof not in (6, 12):
        raise ValueError(f"dof must be 6 (rigid) or 12 (affine), got {dof!r}")
    if not levels_mm or any(s <= 0 for s in levels_mm):
        raise ValueError(f"levels_mm must be positive spacings, got {levels_mm!r}")
    start = time.perf_counter()
    fgrid, mgrid = _Grid.of(fixed), _Grid.of(moving)
    fmask, centre = _fixed_centre(fixed, fgrid, fixed_mask)
    p = _initial_params(moving, mgrid, centre, dof, initial)
    levels = _levels(fixed, moving, fmask, centre, tuple(float(s) for s in levels_mm), bins)
    p, costs = _coarse_to_fine(levels, p, dof, search=initial is None)

    matrix = _matrix(p)
    translation = p[:3]
    transform = transform_from_affine(matrix, translation, centre)
    info: dict[str, Any] = {
        "dof": dof,
        "levels_mm": [float(s) for s in levels_mm],
        "cost": [float(c) for c in costs],
        "evaluations": int(sum(lv.evaluations for lv in levels)),
        "seconds": float(time.perf_counter() - start),
        "matrix": matrix.tolist(),
        "translation": translation.tolist(),
        "center": centre.tolist(),
        "affine": np.vstack([np.c_[matrix, translation + centre - matrix @ centre], [0, 0, 0, 1]]).tolist(),
    }
    return transform, info
