"""Image similarity shared by training and evaluation: SSIM (paper eq. 5; Wang et al. 2004) and the PSNR cap (eq. 4).

Written once for NumPy arrays and torch tensors: the Gaussian window is applied as products with band matrices
(``B_h.T @ x @ B_w``, BLAS matrix products on either kind), built with NumPy and turned into a tensor only when
the images are tensors. Nothing here imports torch: a tensor argument means torch is already imported, and its
module is taken from ``sys.modules``. Evaluation (:mod:`brainsr.metrics.image`) calls it with NumPy arrays, the
generator's SSIM loss (:mod:`brainsr.train.losses`, section 3.4) with tensors, differentiably.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import numpy as np

__all__ = ["PSNR_IDENTICAL_DB", "autocast_off", "band_matrix", "gaussian_window", "ssim", "ssim_map", "ssim_reduce"]

#: PSNR returned when the MSE is exactly 0 (identical images), instead of +inf, so that averages stay finite.
PSNR_IDENTICAL_DB = 100.0

#: An (N, C, H, W) NumPy array or torch tensor: every function here returns the kind it is given.
Images = Any


def _is_tensor(x: object) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def autocast_off(x: Images) -> contextlib.AbstractContextManager:
    """Autocast disabled for tensor ``x``'s device type (no-op for arrays, or where autocast does not exist)."""
    if not _is_tensor(x):
        return contextlib.nullcontext()
    try:
        return sys.modules["torch"].autocast(device_type=x.device.type, enabled=False)
    except RuntimeError:  # device type without autocast support
        return contextlib.nullcontext()


def _float32(a: Images, like: Images) -> Images:
    """``a`` in float32: a tensor on ``like``'s device when ``like`` is a tensor, else a NumPy array."""
    if _is_tensor(like):
        torch = sys.modules["torch"]
        return torch.as_tensor(a, dtype=torch.float32, device=like.device)
    if _is_tensor(a):
        raise TypeError("SSIM: images and masks must all be NumPy arrays or all torch tensors")
    return np.asarray(a, np.float32)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Normalised 1D Gaussian window (float32, sums to 1) of ``size`` taps centred on the middle one.

    With the defaults (11 taps, sigma 1.5) it is the window of Wang et al. 2004 and equals scipy's
    ``gaussian_filter`` kernel with ``truncate=3.5`` as used by skimage's SSIM (radius ``int(3.5 * 1.5 + 0.5) = 5``).
    """
    if size < 1:
        raise ValueError(f"window size must be >= 1, got {size}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    w = np.exp(-0.5 * (x / sigma) ** 2)
    return (w / w.sum()).astype(np.float32)


def band_matrix(n: int, g: np.ndarray) -> np.ndarray:
    """(n, n - len(g) + 1) matrix whose column j holds ``g`` at rows j..j + len(g) - 1: ``x @ band`` is the
    'valid' correlation of the rows of ``x`` with ``g``."""
    k = len(g)
    rows = np.arange(n)[:, None] - np.arange(n - k + 1)[None, :]
    return np.where((rows >= 0) & (rows < k), g[np.clip(rows, 0, k - 1)], 0).astype(g.dtype)


def _check(pred: Images, target: Images, window: int) -> None:
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.ndim != 4:
        raise ValueError(f"SSIM expects (N, C, H, W) tensors, got shape {tuple(pred.shape)}")
    if window % 2 != 1:
        raise ValueError(f"SSIM window must be odd, got {window}")
    h, w = pred.shape[2:]
    if h < window or w < window:
        raise ValueError(f"images ({h}x{w}) are smaller than the SSIM window ({window})")


def ssim_map(
    pred: Images,
    target: Images,
    *,
    data_range: float = 1.0,
    window: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Images:
    """SSIM map (N, C, H - window + 1, W - window + 1) in float32 (paper eq. 5, Wang et al. 2004 eq. 13).

    Local statistics are Gaussian-weighted means computed with a separable 'valid' filter (two matrix products), with
    population (co)variances (skimage ``use_sample_covariance=False``). For tensors autocast is disabled inside and
    the map is differentiable.
    """
    _check(pred, target, window)
    with autocast_off(pred):
        x = _float32(pred, pred)
        y = _float32(target, x)
        # (Co)variances are shift-invariant: centring each image on its (constant, detached) mean before the
        # E[x²] - E[x]² differences reduces float32 cancellation ~10x (map within ~1e-5 of skimage's float64 map).
        off_x = (x.detach() if _is_tensor(x) else x).mean(axis=(2, 3), keepdims=True)
        off_y = (y.detach() if _is_tensor(y) else y).mean(axis=(2, 3), keepdims=True)
        x = x - off_x
        y = y - off_y
        g = gaussian_window(window, sigma)
        b_w = _float32(band_matrix(x.shape[3], g), x)
        b_h = _float32(np.ascontiguousarray(band_matrix(x.shape[2], g).T), x)

        def blur(a: Images) -> Images:  # 'valid' Gaussian filter along W, then H: matrix products (BLAS) run
            return b_h @ (a @ b_w)  # several times faster than a convolution on CPUs, same values to float rounding

        m_x, m_y = blur(x), blur(y)
        var_x = blur(x * x) - m_x * m_x
        var_y = blur(y * y) - m_y * m_y
        cov_xy = blur(x * y) - m_x * m_y
        mu_x = m_x + off_x
        mu_y = m_y + off_y
        c1 = (k1 * data_range) ** 2
        c2 = (k2 * data_range) ** 2
        num = (2.0 * mu_x * mu_y + c1) * (2.0 * cov_xy + c2)
        den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
        return num / den


def ssim_reduce(smap: Images, *, mask: Images | None = None, window: int = 11, reduction: str = "mean") -> Images:
    """Mean of an SSIM map (:func:`ssim_map`): over everything (``"mean"``) or per sample (``"none"``, shape (N,)).

    ``mask`` (N, 1, H, W) or (N, C, H, W) of 0/1 on the images' grid is cropped like the map (``(window - 1) // 2``
    pixels per side) and weights the mean (a 1-channel mask is broadcast over channels); an empty (cropped) mask
    raises ``ValueError`` (for ``"none"``: an empty mask in any sample).
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if mask is None:
        return smap.mean() if reduction == "mean" else smap.mean(axis=(1, 2, 3))
    pad = (window - 1) // 2
    n, c, h, w = smap.shape[0], smap.shape[1], smap.shape[2] + 2 * pad, smap.shape[3] + 2 * pad
    if mask.ndim != 4 or mask.shape[0] != n or mask.shape[1] not in (1, c) or tuple(mask.shape[2:]) != (h, w):
        raise ValueError(f"mask shape {tuple(mask.shape)} must be (N, 1, H, W) or (N, C, H, W) for data {(n, c, h, w)}")
    weights = _float32(mask[:, :, pad : h - pad, pad : w - pad], smap)
    weights = weights.expand_as(smap) if _is_tensor(weights) else np.broadcast_to(weights, smap.shape)
    if reduction == "mean":
        total = weights.sum()
        if not bool(total > 0):
            raise ValueError("mask is empty (no nonzero element): the masked mean is undefined")
        return (smap * weights).sum() / total
    totals = weights.sum(axis=(1, 2, 3))
    if not bool((totals > 0).all()):
        empty = [i for i, t in enumerate(totals.tolist()) if t <= 0]
        raise ValueError(f"mask is empty (after cropping the SSIM border) for sample(s) {empty}")
    return (smap * weights).sum(axis=(1, 2, 3)) / totals


def ssim(
    pred: Images, target: Images, *, mask: Images | None = None, reduction: str = "mean", **params: float
) -> Images:
    """SSIM (paper eq. 5; Wang et al. 2004) of (N, C, H, W) arrays or tensors (differentiable), in float32.

    ``params``: those of :func:`ssim_map` (``data_range`` 1, ``window`` 11 taps, ``sigma`` 1.5, ``k1``, ``k2``).
    The Gaussian window is applied without padding, so the SSIM map covers only the 'valid' region, i.e. the image
    less ``(window - 1) // 2`` pixels on each side. This is exactly the region skimage averages over:
    ``structural_similarity(a, b, data_range=1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``
    filters the whole image with reflection and then crops that border before taking the mean, and the cropped
    values do not depend on the reflected pixels. Our map therefore equals skimage's cropped ``full`` map and our
    mean its ``mssim`` up to float32 rounding (map ~1e-5, mean ~1e-7; both tested to 1e-5). ``mask`` and
    ``reduction``: see :func:`ssim_reduce`.
    """
    smap = ssim_map(pred, target, **params)
    return ssim_reduce(smap, mask=mask, window=int(params.get("window", 11)), reduction=reduction)
