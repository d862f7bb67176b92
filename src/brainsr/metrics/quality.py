"""Clinical image-quality metrics (paper 3.8.1, eqs. 6-8; MRIQC as the anchor for the alternative forms).

Each metric is a pure function of an image and explicit boolean masks. Where the paper and MRIQC differ the
function takes ``form="paper"`` or ``form="mriqc"`` (``../shared/README.md`` section 3):

- CJV: paper (sd_WM + sd_GM) / |mean_WM - mean_GM| (Ganzetti et al. 2016); MRIQC form with robust statistics,
  (MAD_WM + MAD_GM) / |median_WM - median_GM|, MAD scaled by 1.4826 to be consistent with the SD of a normal;
- EFC: paper -Σ (x / x_max) ln(x / x_max) over the field of view (eq. 7); MRIQC form with B_max = sqrt(Σ x²)
  and the entropy divided by its maximum (√N / 2) ln N (Atkinson et al. 1997);
- FWHM: the classic first-difference estimate per axis inside the brain mask (Forman et al. 1995, AFNI
  3dFWHMx): FWHM = 2.35482 sqrt(-1 / (4 ln(1 - var(Δ) / (2 var)))) voxels, times the voxel size for mm;
- WM2max: median WM intensity over the 95th percentile of the image (paper) or its 99.95th (MRIQC code);
- per-tissue summary statistics (mean, SD, 5th and 95th percentile; MRIQC adds median and MAD) and the ratios
  GM/WM, GM/CSF, WM/CSF of each statistic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

__all__ = [
    "MAD_NORMAL",
    "TISSUE_RATIOS",
    "cjv",
    "efc",
    "fwhm",
    "mad",
    "quality_metrics",
    "tissue_ratios",
    "tissue_stats",
    "wm2max",
]

Form = Literal["paper", "mriqc"]

#: Scale making the median absolute deviation a consistent estimator of a normal distribution's SD.
MAD_NORMAL = 1.4826
#: FWHM of a Gaussian in units of its SD, 2 sqrt(2 ln 2).
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: Tissue pairs whose statistics are divided, in table order.
TISSUE_RATIOS = (("gm", "wm"), ("gm", "csf"), ("wm", "csf"))


def _inside(image: np.ndarray, mask: np.ndarray, name: str) -> np.ndarray:
    """float64 intensities of ``image`` inside boolean ``mask``; error naming the mask when it is empty."""
    mask = np.asarray(mask, bool)
    if mask.shape != np.shape(image):
        raise ValueError(f"{name} mask {mask.shape} and image {np.shape(image)} differ in shape")
    values = np.asarray(image, np.float64)[mask]
    if values.size == 0:
        raise ValueError(f"the {name} mask is empty")
    return values


def _check_form(form: str) -> None:
    if form not in ("paper", "mriqc"):
        raise ValueError(f"form must be 'paper' or 'mriqc', got {form!r}")


def mad(values: np.ndarray) -> float:
    """Median absolute deviation from the median, times :data:`MAD_NORMAL`."""
    values = np.asarray(values, np.float64)
    return float(MAD_NORMAL * np.median(np.abs(values - np.median(values))))


def cjv(image: np.ndarray, wm: np.ndarray, gm: np.ndarray, form: Form = "paper") -> float:
    """Coefficient of joint variation of WM and GM (eq. 6); lower is better. NaN if the two centres coincide."""
    _check_form(form)
    w, g = _inside(image, wm, "WM"), _inside(image, gm, "GM")
    if form == "paper":
        spread, gap = w.std() + g.std(), abs(w.mean() - g.mean())
    else:
        spread, gap = mad(w) + mad(g), abs(float(np.median(w)) - float(np.median(g)))
    return float(spread / gap) if gap > 0 else float("nan")


def efc(image: np.ndarray, form: Form = "paper") -> float:
    """Entropy focus criterion over the whole field of view (eq. 7); lower means sharper, less ghosting.

    Voxels with intensity ≤ 0 contribute 0 (the limit of x ln x). ``paper``: -Σ (x/x_max) ln(x/x_max).
    ``mriqc``: -Σ (x/B) ln(x/B) with B = sqrt(Σ x²), divided by the maximum entropy (√N / 2) ln N, N = voxels.
    """
    _check_form(form)
    x = np.asarray(image, np.float64).ravel()
    n = x.size
    x = x[x > 0]
    if x.size == 0:
        raise ValueError("EFC of an image without positive intensities is undefined")
    scale = x.max() if form == "paper" else math.sqrt(float(np.sum(x**2)))
    r = x / scale
    entropy = float(-np.sum(r * np.log(r)))
    if form == "paper":
        return entropy
    return entropy / (math.sqrt(n) / 2.0 * math.log(n)) if n > 1 else float("nan")


def fwhm(image: np.ndarray, mask: np.ndarray, zooms: Sequence[float]) -> dict[str, float]:
    """Smoothness per axis by the first-difference estimate (eq. 8 in its classic AFNI form).

    For each axis, Δ are the differences between neighbouring voxels along it with both voxels in ``mask``; with
    r = var(Δ) / (2 var(I in mask)), FWHM = 2.35482 sqrt(-1 / (4 ln(1 - r))) voxels. For white noise r = 1
    (FWHM 0 is not reached: r ≥ 1 gives NaN, "rougher than the estimator can describe"). Returns
    ``fwhm_{x,y,z}_vox``, ``fwhm_{x,y,z}_mm`` and their means ``fwhm_avg_vox``, ``fwhm_avg_mm``.
    """
    img = np.asarray(image, np.float64)
    mask = np.asarray(mask, bool)
    if img.ndim != 3 or len(zooms) != 3:
        raise ValueError(f"FWHM needs a 3D image and 3 voxel sizes, got {img.shape} and {tuple(zooms)}")
    variance = _inside(img, mask, "brain").var()
    out: dict[str, float] = {}
    for axis, name in enumerate("xyz"):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        both = mask[tuple(lo)] & mask[tuple(hi)]
        diff = (img[tuple(hi)] - img[tuple(lo)])[both]
        ratio = diff.var() / (2.0 * variance) if diff.size > 1 and variance > 0 else float("nan")
        vox = _FWHM_PER_SIGMA * math.sqrt(-1.0 / (4.0 * math.log(1.0 - ratio))) if 0 < ratio < 1 else float("nan")
        out[f"fwhm_{name}_vox"] = vox
        out[f"fwhm_{name}_mm"] = vox * float(zooms[axis])
    out["fwhm_avg_vox"] = float(np.mean([out[f"fwhm_{a}_vox"] for a in "xyz"]))
    out["fwhm_avg_mm"] = float(np.mean([out[f"fwhm_{a}_mm"] for a in "xyz"]))
    return out


def wm2max(image: np.ndarray, wm: np.ndarray, form: Form = "paper") -> float:
    """Median WM intensity over a high percentile of the whole image: the 95th (paper) or 99.95th (MRIQC)."""
    _check_form(form)
    top = float(np.percentile(np.asarray(image, np.float64), 95.0 if form == "paper" else 99.95))
    return float(np.median(_inside(image, wm, "WM")) / top) if top > 0 else float("nan")


def tissue_stats(image: np.ndarray, tissues: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Summary statistics of the intensities in each tissue: ``{tissue}_{mean,sd,p05,p95,median,mad,n}``.

    mean/SD (population SD)/5th/95th percentile are the paper's; median and MAD (normal-scaled) MRIQC's.
    """
    out: dict[str, float] = {}
    for name, mask in tissues.items():
        v = _inside(image, mask, name)
        p05, p95 = np.percentile(v, [5.0, 95.0])
        out.update(
            {
                f"{name}_mean": float(v.mean()),
                f"{name}_sd": float(v.std()),
                f"{name}_p05": float(p05),
                f"{name}_p95": float(p95),
                f"{name}_median": float(np.median(v)),
                f"{name}_mad": mad(v),
                f"{name}_n": float(v.size),
            }
        )
    return out


def tissue_ratios(stats: Mapping[str, float], stat_names: Sequence[str] = ("mean", "sd", "p05", "p95")) -> dict:
    """Ratios ``{a}{b}_{stat}`` = stats[a_stat] / stats[b_stat] for the pairs in :data:`TISSUE_RATIOS`."""
    out: dict[str, float] = {}
    for a, b in TISSUE_RATIOS:
        for stat in stat_names:
            den = stats[f"{b}_{stat}"]
            out[f"{a}{b}_{stat}"] = float(stats[f"{a}_{stat}"] / den) if den != 0 else float("nan")
    return out


def quality_metrics(
    image: np.ndarray, tissues: Mapping[str, np.ndarray], brain: np.ndarray, zooms: Sequence[float]
) -> dict[str, float]:
    """Every quality metric of one image with the given CSF/GM/WM masks (``tissues`` keys ``csf``, ``gm``, ``wm``)."""
    missing = {"csf", "gm", "wm"} - set(tissues)
    if missing:
        raise ValueError(f"tissue masks {sorted(missing)} are missing")
    stats = tissue_stats(image, {k: tissues[k] for k in ("csf", "gm", "wm")})
    return {
        "cjv": cjv(image, tissues["wm"], tissues["gm"], "paper"),
        "cjv_mriqc": cjv(image, tissues["wm"], tissues["gm"], "mriqc"),
        "efc": efc(image, "paper"),
        "efc_mriqc": efc(image, "mriqc"),
        **fwhm(image, brain, zooms),
        "wm2max": wm2max(image, tissues["wm"], "paper"),
        "wm2max_mriqc": wm2max(image, tissues["wm"], "mriqc"),
        **stats,
        **tissue_ratios(stats),
    }
