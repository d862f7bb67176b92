"""Agreement of segmentations and volumes (paper 3.8.3, Tables S3-S6, Fig. 10).

Overlap of a binary segmentation with a reference one: Dice, Jaccard, true-positive fraction (sensitivity),
true-negative fraction (specificity, within a stated region) and positive predictive value. A ratio whose
denominator is 0 (e.g. Dice of two empty masks) is undefined and returned as NaN, never a made-up value.
Bland-Altman agreement of volumes (Fig. 10): differences as % of the pair mean, bias, SD with ddof = 1 and the
95 % limits of agreement bias ± 1.96 SD.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["OVERLAP_METRICS", "BlandAltman", "bland_altman", "overlap_metrics"]

#: Overlap metric names, in table order.
OVERLAP_METRICS = ("dice", "jaccard", "tpf", "tnf", "ppv")


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def overlap_metrics(seg: np.ndarray, ref: np.ndarray, region: np.ndarray | None = None) -> dict[str, float]:
    """Dice 2|A∩B|/(|A|+|B|), Jaccard |A∩B|/|A∪B|, TPF TP/(TP+FN), TNF TN/(TN+FP), PPV TP/(TP+FP).

    ``seg`` is the segmentation judged, ``ref`` the reference (the research scan's, or the ground truth). Voxels
    outside ``region`` (e.g. the brain mask; ``None`` = every voxel) count as neither positive nor negative.
    """
    a = np.asarray(seg, bool)
    b = np.asarray(ref, bool)
    if a.shape != b.shape:
        raise ValueError(f"segmentation {a.shape} and reference {b.shape} differ in shape")
    if region is not None:
        region = np.asarray(region, bool)
        if region.shape != a.shape:
            raise ValueError(f"region {region.shape} and segmentation {a.shape} differ in shape")
        a, b = a[region], b[region]
    tp = float(np.count_nonzero(a & b))
    fp = float(np.count_nonzero(a & ~b))
    fn = float(np.count_nonzero(~a & b))
    tn = float(a.size) - tp - fp - fn
    return {
        "dice": _ratio(2 * tp, 2 * tp + fp + fn),
        "jaccard": _ratio(tp, tp + fp + fn),
        "tpf": _ratio(tp, tp + fn),
        "tnf": _ratio(tn, tn + fp),
        "ppv": _ratio(tp, tp + fp),
    }


@dataclass(frozen=True)
class BlandAltman:
    """Bland-Altman agreement of paired measurements a (method) and b (reference), Fig. 10."""

    mean: np.ndarray  # (a + b) / 2 per pair
    diff_pct: np.ndarray  # 100 (a - b) / mean per pair
    bias: float  # mean of diff_pct
    sd: float  # SD of diff_pct, ddof = 1
    loa_low: float  # bias - 1.96 SD
    loa_high: float  # bias + 1.96 SD
    n: int


def bland_altman(a: np.ndarray, b: np.ndarray) -> BlandAltman:
    """Differences of ``a`` from ``b`` as % of the pair mean; needs ≥ 2 pairs with a positive mean."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"Bland-Altman needs paired values, got {a.size} and {b.size}")
    mean = (a + b) / 2.0
    if np.any(mean <= 0):
        raise ValueError("Bland-Altman % differences need positive pair means")
    if a.size < 2:
        raise ValueError(f"Bland-Altman needs at least 2 pairs, got {a.size}")
    pct = 100.0 * (a - b) / mean
    bias = float(pct.mean())
    sd = float(pct.std(ddof=1))
    return BlandAltman(
        mean=mean, diff_pct=pct, bias=bias, sd=sd, loa_low=bias - 1.96 * sd, loa_high=bias + 1.96 * sd, n=a.size
    )
