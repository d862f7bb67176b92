"""Image similarity of an upsampled (or interpolated) scan to the research scan (paper 3.8.1, eqs. 3-5).

Pure functions on NumPy arrays of intensities in [0, 1] and an optional boolean mask of the voxels to use
(the brain mask, or ``None`` for the whole field of view). Definitions (``../shared/README.md`` section 3):

- MAE = mean |p - g|;
- NMSE (standard) = Σ (p - g)² / Σ g²;
- NMSE (paper form, eq. 3 averaged over voxels) = mean((p - g)²) / Σ g² = standard NMSE / N, which is why the
  paper reports values of order 1e-10;
- PSNR = 10 log10(I_max² / MSE) with I_max = 1 (eq. 4);
- SSIM (eq. 5) per 2D slice along the slicing axis, Gaussian window of 11 taps with σ = 1.5, K1 = 0.01,
  K2 = 0.03, data range 1, averaged over slices.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from brainsr.base.similarity import PSNR_IDENTICAL_DB, ssim_map, ssim_reduce

__all__ = ["IMAGE_METRICS", "image_metrics", "mae", "mse", "nmse", "nmse_paper", "psnr", "ssim_slices"]

#: Metric names, in table order.
IMAGE_METRICS = ("mae", "nmse", "nmse_paper", "psnr", "ssim")


def _voxels(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The float64 voxel values of both images that the metric uses (all, or those inside ``mask``)."""
    pred = np.asarray(pred)
    target = np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    if mask is None:
        return pred.astype(np.float64).ravel(), target.astype(np.float64).ravel()
    mask = np.asarray(mask, bool)
    if mask.shape != pred.shape:
        raise ValueError(f"mask {mask.shape} and images {pred.shape} differ in shape")
    if not mask.any():
        raise ValueError("the mask is empty: no voxel to compare")
    return pred[mask].astype(np.float64), target[mask].astype(np.float64)


def _pixel_metrics(p: np.ndarray, g: np.ndarray, data_range: float = 1.0) -> dict[str, float]:
    """MAE, NMSE, the paper's NMSE and PSNR (paper 3.8.1, eqs. 3-4) of the float64 voxels of :func:`_voxels`."""
    err = float(np.mean((p - g) ** 2))
    energy = float(np.sum(g**2))
    standard = float(np.sum((p - g) ** 2) / energy) if energy > 0 else float("nan")
    return {
        "mae": float(np.mean(np.abs(p - g))),
        "nmse": standard,
        "nmse_paper": standard / p.size,
        "psnr": PSNR_IDENTICAL_DB if err == 0 else float(10.0 * np.log10(data_range**2 / err)),
    }


def mae(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute error mean|p - g| (paper 3.8.1)."""
    return _pixel_metrics(*_voxels(pred, target, mask))["mae"]


def mse(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error mean (p - g)²."""
    p, g = _voxels(pred, target, mask)
    return float(np.mean((p - g) ** 2))


def nmse(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Standard normalised MSE Σ (p - g)² / Σ g²; NaN when the target is all zero."""
    return _pixel_metrics(*_voxels(pred, target, mask))["nmse"]


def nmse_paper(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """The paper's NMSE (eq. 3 averaged over voxels): mean((p - g)²) / Σ g² = :func:`nmse` / N."""
    return _pixel_metrics(*_voxels(pred, target, mask))["nmse_paper"]


def psnr(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, data_range: float = 1.0) -> float:
    """PSNR = 10 log10(data_range² / MSE) in dB (eq. 4); identical images give ``PSNR_IDENTICAL_DB``."""
    return _pixel_metrics(*_voxels(pred, target, mask), data_range)["psnr"]


def _slice_maps(
    pred: np.ndarray, target: np.ndarray, axis: int, window: int = 11, sigma: float = 1.5, data_range: float = 1.0
) -> np.ndarray:
    """(S, 1, H', W') float32 SSIM maps of the S slices along ``axis`` (each map: the slice's 'valid' region)."""
    pred = np.asarray(pred, np.float32)
    target = np.asarray(target, np.float32)
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(f"SSIM needs two 3D volumes of one shape, got {pred.shape} and {target.shape}")
    p = np.ascontiguousarray(np.moveaxis(pred, axis, 0))[:, None]
    g = np.ascontiguousarray(np.moveaxis(target, axis, 0))[:, None]
    return ssim_map(p, g, data_range=data_range, window=window, sigma=sigma)


def _slices_mean(
    maps: np.ndarray, mask: np.ndarray | None, shape: tuple[int, ...], axis: int, window: int = 11
) -> float:
    """Mean over slices of each slice's SSIM (masked mean of its map; slices with an empty cropped mask skipped)."""
    if mask is None:
        return float(ssim_reduce(maps, reduction="none").astype(np.float64).mean())
    if np.shape(mask) != shape:
        raise ValueError(f"mask {np.shape(mask)} and images {shape} differ in shape")
    m = np.moveaxis(np.asarray(mask, bool), axis, 0)
    half = (window - 1) // 2
    keep = m[:, half : m.shape[1] - half, half : m.shape[2] - half].any(axis=(1, 2))
    if not keep.any():
        raise ValueError("the mask is empty inside the SSIM window's valid region of every slice")
    per_slice = ssim_reduce(maps[keep], mask=m[keep][:, None], window=window, reduction="none")
    return float(per_slice.astype(np.float64).mean())


def ssim_slices(
    pred: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    axis: int = 2,
    window: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
) -> float:
    """Mean SSIM of the 2D slices along ``axis`` (eq. 5; Gaussian window, population covariances).

    Each slice's SSIM is the mean of its 'valid' SSIM map (the slice less 5 pixels per side for 11 taps), which
    equals scikit-image's ``structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1)``. With a mask, each slice's map is averaged over the masked
    pixels only, and slices whose (cropped) mask is empty are skipped; without one every slice counts.
    """
    maps = _slice_maps(pred, target, axis, window, sigma, data_range)
    return _slices_mean(maps, mask, np.shape(pred), axis, window)


def image_metrics(
    pred: np.ndarray, target: np.ndarray, masks: Mapping[str, np.ndarray | None], *, axis: int = 2
) -> dict[str, float]:
    """Every image metric over every named region, as ``{f"{metric}_{region}": value}``.

    ``masks`` maps region names to boolean masks, ``None`` meaning the whole field of view, e.g.
    ``{"brain": brain_mask, "fov": None}``.
    """
    out: dict[str, float] = {}
    maps = None  # one SSIM map per slice serves every region
    for region, mask in masks.items():
        voxels = _voxels(pred, target, mask)  # once per region for the four voxel metrics
        out |= {f"{name}_{region}": value for name, value in _pixel_metrics(*voxels).items()}
        maps = _slice_maps(pred, target, axis) if maps is None else maps
        out[f"ssim_{region}"] = _slices_mean(maps, mask, np.shape(pred), axis)
    return out
