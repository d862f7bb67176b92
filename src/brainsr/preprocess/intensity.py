"""Intensity scaling of a session's images on the analysis grid (paper 3.1: intensities in [0, 1]).

Two methods, chosen by the config's ``preprocess.rescale``:

``wm`` (default; departs from the paper)
    Each sequence divided by its white-matter level and multiplied by a fixed level per sequence
    (``rescale_wm_level``), then clipped to [0, 1]. The white matter is found on T1w, where it is the brightest
    tissue: the brightest of three intensity classes (1D k-means on the brain core's histogram); each sequence's
    level is its median over those voxels. Tissue and lesion contrasts keep their ratios to white matter, so a
    FLAIR lesion at 1.8 x WM stays at 1.8 x WM instead of being clipped, and the same tissue has the same value
    in every subject.
``percentile``
    The brain core's low/high percentiles (``rescale_percentiles``) mapped to 0 and 1, outliers clipped
    (:func:`brainsr.preprocess.resample.rescale`): the scale follows whatever is brightest in the core, and
    clips most FLAIR lesions of a research scan to 1.0 (README).

Both measure inside the mask (the percentiles in the mask less its outer ``rescale_core_mm``; the white matter
deeper than :data:`WM_DEPTH_MM`) and scale the whole mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from brainsr.preprocess.resample import brain_core, rescale

__all__ = ["RESCALE_METHODS", "scale_session", "wm_rescale", "wm_voxels"]

RESCALE_METHODS = ("wm", "percentile")
#: Sequence whose brightest class is the white matter.
REFERENCE = "T1w"
#: The white matter is looked for this deep (mm) inside the mask: deep white matter, deep grey matter and
#: ventricles, never the scalp fat that a loose mask keeps at its edge (brighter than WM on T1w; measured: with a
#: 4 mm core, one clinical session of the default cohort had its fat taken for white matter).
WM_DEPTH_MM = 15.0


def _kmeans_1d(values: np.ndarray, k: int = 3, bins: int = 512, iterations: int = 100) -> np.ndarray:
    """Centres (ascending) of ``k`` intensity classes by Lloyd's algorithm on the histogram of ``values``
    (deterministic: started at the 20th, 50th and 85th percentiles for k = 3, else evenly spaced ones)."""
    lo, hi = np.percentile(values, [0.5, 99.5])
    counts, edges = np.histogram(np.clip(values, lo, hi), bins=bins, range=(lo, hi))
    x = 0.5 * (edges[:-1] + edges[1:])
    start = [20.0, 50.0, 85.0] if k == 3 else list(np.linspace(100 / (2 * k), 100 - 100 / (2 * k), k))
    centres = np.percentile(values, start)
    for _ in range(iterations):
        label = np.searchsorted(0.5 * (centres[1:] + centres[:-1]), x)
        weight = np.bincount(label, counts, minlength=k)
        new = np.where(weight > 0, np.bincount(label, counts * x, minlength=k) / np.maximum(weight, 1), centres)
        if np.allclose(new, centres, rtol=0, atol=1e-9 * max(abs(hi), 1.0)):
            break
        centres = np.sort(new)
    return centres


def wm_voxels(t1w: np.ndarray, core: np.ndarray) -> np.ndarray:
    """White-matter voxels of the brain ``core``: T1w above the midpoint between the two brightest of three
    intensity classes (CSF < GM < WM on T1w)."""
    values = t1w[core]
    if values.size < 100:
        raise ValueError(f"cannot find the white matter: {values.size} voxels in the brain core")
    centres = _kmeans_1d(values)
    return core & (t1w > 0.5 * (centres[1] + centres[2]))


def wm_rescale(data: np.ndarray, mask: np.ndarray, wm: np.ndarray, level: float) -> tuple[np.ndarray, dict]:
    """``data`` x ``level`` / (its median over ``wm``), clipped to [0, 1], zero outside ``mask``."""
    reference = float(np.median(data[wm]))
    if not reference > 0:
        raise ValueError(f"cannot rescale: the white-matter level is {reference}")
    out = np.clip(data * (float(level) / reference), 0.0, 1.0) * mask
    info = {"method": "wm", "wm_level": float(level), "wm_reference": reference, "wm_voxels": int(wm.sum())}
    return out.astype(np.float32), info


def scale_session(
    images: Mapping[str, np.ndarray], mask: np.ndarray, zooms: np.ndarray, intensity: Mapping[str, Any]
) -> dict[str, tuple[np.ndarray, dict]]:
    """Every sequence of one session scaled by ``intensity["rescale"]`` (module docstring): {sequence: (data,
    sidecar record)}. ``mask``: the brain mask on the images' grid of voxel size ``zooms``; ``images``: T1w among
    them for ``wm``."""
    method, core_mm = intensity["rescale"], float(intensity["rescale_core_mm"])
    if method == "percentile":
        low, high = (float(p) for p in intensity["rescale_percentiles"])
        core = brain_core(mask, core_mm, zooms)
        return {q: rescale(d, mask, (low, high), core_mm, core=core) for q, d in images.items()}
    if method != "wm":
        raise ValueError(f"unknown rescale method {method!r}; choose one of {', '.join(RESCALE_METHODS)}")
    if REFERENCE not in images:
        raise ValueError(f"rescale 'wm' finds the white matter on {REFERENCE}, which this session lacks")
    depth = max(core_mm, WM_DEPTH_MM)
    wm = wm_voxels(images[REFERENCE], brain_core(mask, depth, zooms))
    levels = intensity["rescale_wm_level"]
    out = {}
    for seq, data in images.items():
        if seq not in levels:
            raise ValueError(f"config key 'preprocess.rescale_wm_level' has no level for {seq}")
        scaled, info = wm_rescale(data, mask, wm, levels[seq])
        out[seq] = scaled, {**info, "depth_mm": depth}
    return out
