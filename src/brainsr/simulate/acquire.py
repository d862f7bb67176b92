"""Physical acquisition model: acquisition grids, slice profile, k-space truncation, bias field, Rician noise.

An image is sampled from the subject's signal map on an *intermediate* grid aligned with the acquisition
(in-plane spacing and sub-slice spacing equal to the anatomy's resolution), multiplied by a smooth receive bias
field, integrated over each slice's profile (thickness, gap), truncated in k-space to the acquired in-plane
matrix, corrupted with complex Gaussian noise in k-space, zero-filled to the reconstructed matrix and returned as a
magnitude (Rician) image with its true voxel-to-scanner affine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from brainsr.simulate.warp import single_blas_thread

#: Image axes (readout, phase, slice normal) in scanner RAS for each slice orientation.
ORIENTATION_AXES = {
    "axial": np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]]).T,
    "coronal": np.array([[1.0, 0, 0], [0, 0, 1], [0, 1, 0]]).T,
    "sagittal": np.array([[0, 1.0, 0], [0, 0, 1], [1, 0, 0]]).T,
}


def rotation(angles_deg: np.ndarray) -> np.ndarray:
    """Rotation matrix R = Rz Ry Rx for angles (degrees) about x, y, z."""
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def rigid(angles_deg: np.ndarray, translation_mm: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """4x4 rigid transform rotating about ``centre`` and translating: x -> R (x - c) + c + t."""
    m = np.eye(4)
    r = rotation(np.asarray(angles_deg, float))
    m[:3, :3] = r
    m[:3, 3] = np.asarray(centre) - r @ np.asarray(centre) + np.asarray(translation_mm)
    return m


@dataclass(frozen=True)
class Geometry:
    """Effective geometry of one sequence after applying the ``min_voxel_mm`` floor."""

    axes: np.ndarray  # 3x3, columns = readout, phase, slice-normal directions (scanner RAS)
    fov: np.ndarray  # in-plane field of view (mm), 2
    acquired: float
    recon: float
    thickness: float
    gap: float
    n_slices: int
    mode: str

    @property
    def spacing(self) -> float:
        return self.thickness + self.gap

    @property
    def recon_matrix(self) -> np.ndarray:
        return np.maximum(np.round(self.fov / self.recon).astype(int), 2)

    @property
    def acquired_matrix(self) -> np.ndarray:
        return np.maximum(np.round(self.fov / self.acquired).astype(int), 2)


def geometry(seq: dict, min_voxel_mm: float = 0.0) -> Geometry:
    """Slice-stack geometry of a protocol sequence (orientation, angulation, resolution, thickness, gap)."""
    orient = seq["orientation"]
    if orient not in ORIENTATION_AXES:
        raise ValueError(f"unknown orientation {orient!r} (axial, coronal or sagittal)")
    axes = rotation(np.array([float(seq.get("angulation_deg", 0.0)), 0, 0])) @ ORIENTATION_AXES[orient]
    acquired = max(float(seq["acquired_mm"]), min_voxel_mm)
    recon = max(float(seq["recon_mm"]), min_voxel_mm)
    thickness = max(float(seq["thickness_mm"]), min_voxel_mm)
    gap = float(seq.get("gap_mm", 0.0))
    n_slices = int(np.ceil(float(seq["coverage_mm"]) / (thickness + gap)))
    return Geometry(
        axes=axes,
        fov=np.asarray(seq["fov_mm"], float),
        acquired=acquired,
        recon=recon,
        thickness=thickness,
        gap=gap,
        n_slices=n_slices,
        mode=str(seq.get("mode", "2D")),
    )


def recon_affine(geo: Geometry, centre: np.ndarray) -> np.ndarray:
    """Voxel-to-scanner affine of the reconstructed image whose field of view is centred on ``centre``."""
    aff = np.eye(4)
    aff[:3, :3] = geo.axes @ np.diag([geo.recon, geo.recon, geo.spacing])
    first = np.array([-geo.fov[0] / 2, -geo.fov[1] / 2, -(geo.n_slices - 1) * geo.spacing / 2])
    aff[:3, 3] = centre + geo.axes @ first
    return aff


def slice_profile(offsets_mm: np.ndarray, thickness: float) -> np.ndarray:
    """Slice sensitivity at ``offsets_mm`` from the slice centre: a rectangle of the slice thickness with
    Gaussian edges (sigma = 0.1 x thickness), the shape of a windowed-sinc RF excitation."""
    s = 0.1 * thickness
    return 0.5 * (
        erf((offsets_mm + thickness / 2) / (np.sqrt(2) * s)) - erf((offsets_mm - thickness / 2) / (np.sqrt(2) * s))
    )


def _quadratic_terms(u: np.ndarray) -> np.ndarray:
    """Monomials 1, x, y, z, x^2, y^2, z^2, xy, xz, yz of points (N, 3) as an (N, 10) matrix."""
    out = np.empty((len(u), 10))
    block = 1 << 15  # filled by row blocks that stay in cache while their ten columns are written
    for start in range(0, len(u), block):
        o, b = out[start : start + block], u[start : start + block]
        o[:, 0] = 1.0
        o[:, 1:4] = b
        np.multiply(b, b, out=o[:, 4:7])
        for col, (i, j) in enumerate(((0, 1), (0, 2), (1, 2)), start=7):
            np.multiply(b[:, i], b[:, j], out=o[:, col])
    return out


#: Monomial index pairs (i, j) of the quadratic terms x_i x_j, in the column order of :func:`_quadratic_terms`.
_QUADRATIC_PAIRS = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))


@dataclass(frozen=True)
class BiasField:
    """Smooth multiplicative receive field exp(a f(x)), f(x) = c . monomials(x / 100 mm) clipped to [-1.5, 1.5], for
    scanner points x relative to the field-of-view centre (see :func:`make_bias_field`)."""

    amplitude: float
    coef: np.ndarray  # (10,) coefficients of the monomials of :func:`_quadratic_terms`

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """The field at points (N, 3) (float32)."""
        f = _quadratic_terms(points / 100.0) @ self.coef
        return np.exp(self.amplitude * np.clip(f, -1.5, 1.5)).astype(np.float32)

    def _in_frame(self, axes: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """f(axes @ w) = k + l . w + w^T q w (w in 100 mm units along ``axes``): (k, l (3,), symmetric q (3, 3))."""
        c = self.coef
        q = np.zeros((3, 3))
        for (i, j), cij in zip(_QUADRATIC_PAIRS, c[4:], strict=True):
            q[i, j] += cij / 2
            q[j, i] += cij / 2
        return float(c[0]), axes.T @ c[1:4], axes.T @ q @ axes

    def on_grid(self, axes: np.ndarray, u: np.ndarray, v: np.ndarray, z: np.ndarray) -> np.ndarray:
        """The field at the points u_i a_0 + v_j a_1 + z_k a_2 (mm; ``axes`` columns a) as (len(z), len(u) len(v))
        float32, z-major then u then v: the same values as :meth:`__call__` at those points (to rounding),
        evaluated plane by plane without the (N, 10) monomial matrix."""
        k, lin, q = self._in_frame(axes)
        wu, wv = u[:, None] / 100.0, v[None, :] / 100.0
        plane = lin[0] * wu + lin[1] * wv + q[0, 0] * wu**2 + q[1, 1] * wv**2 + 2 * q[0, 1] * (wu * wv)
        slope = 2 * q[0, 2] * wu + 2 * q[1, 2] * wv  # coefficient of w_z
        out = np.empty((len(z), plane.size), np.float32)
        f = np.empty_like(plane)
        for row, wz in zip(out, np.asarray(z, float) / 100.0, strict=True):
            np.multiply(slope, wz, out=f)
            f += plane
            f += k + lin[2] * wz + q[2, 2] * wz**2
            np.clip(f, -1.5, 1.5, out=f)
            f *= self.amplitude
            np.exp(f, out=f)
            row[:] = f.ravel()
        return out


def make_bias_field(amplitude: float, rng: np.random.Generator) -> BiasField:
    """Random receive field: f a random quadratic in x / 100 mm, scaled to |f| <= 1 over a 100 mm sphere (coil
    sensitivity varies slowly in scanner space). The coefficients are drawn and normalised once."""
    c = rng.normal(size=10)
    probe = rng.normal(size=(2000, 3))
    probe /= np.linalg.norm(probe, axis=1, keepdims=True)
    probe *= rng.uniform(0, 1, (2000, 1)) ** (1 / 3)
    c[0] = 0.0
    c /= np.abs(_quadratic_terms(probe) @ c).max() + 1e-8
    return BiasField(amplitude, c)


def _resize_kspace(k: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Crop or zero-pad a centred 2D k-space (last two axes) to ``shape``."""
    out = np.zeros(k.shape[:-2] + tuple(shape), k.dtype)
    src = [slice(None)] * k.ndim
    dst = [slice(None)] * k.ndim
    for ax, (n_in, n_out) in enumerate(zip(k.shape[-2:], shape, strict=True)):
        n = min(n_in, n_out)
        a_in = n_in // 2 - n // 2
        a_out = n_out // 2 - n // 2
        src[k.ndim - 2 + ax] = slice(a_in, a_in + n)
        dst[k.ndim - 2 + ax] = slice(a_out, a_out + n)
    out[tuple(dst)] = k[tuple(src)]
    return out


def acquire(
    sampler: Callable[[np.ndarray], np.ndarray],
    geo: Geometry,
    centre: np.ndarray,
    fine_mm: float,
    noise_sd: float,
    bias_amplitude: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate one image. ``sampler`` maps scanner points (N, 3) to noiseless signal.

    Returns (magnitude image with axes readout, phase, slice; voxel-to-scanner affine).
    """
    n_fine = np.maximum(np.round(geo.fov / fine_mm).astype(int), 2)
    step = geo.fov / n_fine
    centres = (np.arange(geo.n_slices) - (geo.n_slices - 1) / 2) * geo.spacing
    m = max(1, round(1.4 * geo.thickness / fine_mm))
    offsets = (np.arange(m) - (m - 1) / 2) * (1.4 * geo.thickness / m) if m > 1 else np.zeros(1)
    weights = slice_profile(offsets, geo.thickness)
    weights = (weights / weights.sum()).astype(np.float32)
    recon = geo.recon_matrix
    acq = np.minimum(geo.acquired_matrix, n_fine)
    out = np.empty((recon[0], recon[1], geo.n_slices), np.float32)
    u = -geo.fov[0] / 2 + np.arange(n_fine[0]) * step[0]
    v = -geo.fov[1] / 2 + np.arange(n_fine[1]) * step[1]
    uu, vv = np.meshgrid(u, v, indexing="ij")
    inplane = np.stack([uu.ravel(), vv.ravel()], 1)
    # seed derivation kept as it was, so that existing cohorts regenerate bit-identically
    bias_rng = np.random.default_rng(np.random.default_rng(rng.integers(2**32)).integers(2**32))
    bias = make_bias_field(bias_amplitude, bias_rng) if bias_amplitude > 0 else None
    # integrate each slice over its profile, a few slices at a time to bound memory
    acc = np.zeros((geo.n_slices, n_fine[0] * n_fine[1]), np.float32)
    chunk = max(1, int(4e6 // (inplane.shape[0] * m)))
    for start in range(0, geo.n_slices, chunk):
        zs = (centres[start : start + chunk, None] + offsets[None, :]).ravel()
        local = np.empty((len(zs) * len(inplane), 3))
        local[:, :2] = np.tile(inplane, (len(zs), 1))
        local[:, 2] = np.repeat(zs, len(inplane))
        with single_blas_thread():
            pts = centre + local @ geo.axes.T
        sig = sampler(pts)
        if bias is not None:
            sig *= bias.on_grid(geo.axes, u, v, zs).reshape(-1)
        sig = sig.reshape(-1, m, inplane.shape[0])
        acc[start : start + chunk] = np.einsum("smn,m->sn", sig, weights)
    for s in range(geo.n_slices):
        img = acc[s].reshape(n_fine)
        k = np.fft.fftshift(np.fft.fft2(img, norm="forward"))
        k = _resize_kspace(k, tuple(acq))
        if noise_sd > 0:
            sd_k = noise_sd / np.sqrt(acq[0] * acq[1])
            k = k + (rng.normal(0, sd_k, k.shape) + 1j * rng.normal(0, sd_k, k.shape))
        k = _resize_kspace(k, tuple(recon))
        out[..., s] = np.abs(np.fft.ifft2(np.fft.ifftshift(k), norm="forward"))
    return out, recon_affine(geo, centre)
