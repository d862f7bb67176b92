"""White-matter hyperintensity segmentation (paper 3.8.3, after Zhan et al. 2015) and its lesion template.

WMH = brain-extracted FLAIR above mean + k·SD of the brain (k = 1.3), minus hyperintense areas unlikely to be
pathology (where the lesion-distribution template is below ``prior_min``), then a Gaussian smoothing of the
candidate mask and the removal of voxels whose smoothed value is below 0.1 or whose FLAIR z-score is below 0.95.

The paper's lesion-distribution template came from the segmentations of a large ageing study (Wardlaw et al.
2011), which is not available here. :func:`lesion_prior` builds the stand-in from the template's own white-matter
probability (nilearn's MNI152 2009 WM map): the WM probability, eroded away from the cortex and smoothed, so that
it is high in periventricular and deep white matter, where WMH occur, and low in the cortex, CSF and the
cerebellar and brain-stem margins, where hyperintense FLAIR is mostly partial volume or artefact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from brainsr.segment.tissue import zscore_in

__all__ = ["lesion_prior", "wmh_mask"]


def lesion_prior(
    wm_probability: np.ndarray,
    zooms: Sequence[float],
    *,
    threshold: float = 0.5,
    erode_mm: float = 2.0,
    sigma_mm: float = 2.0,
) -> np.ndarray:
    """Lesion-distribution template in [0, 1] from a WM probability map (see the module docstring).

    WM voxels (probability ≥ ``threshold``) farther than ``erode_mm`` from non-WM, smoothed with a Gaussian of
    ``sigma_mm``, rescaled so that its maximum is 1.
    """
    zooms = np.asarray(zooms, float)
    wm = np.asarray(wm_probability, np.float64) >= threshold
    if not wm.any():
        raise ValueError(f"no voxel of the WM probability map reaches {threshold}")
    depth = ndi.distance_transform_edt(wm, sampling=zooms)
    core = depth > erode_mm
    prior = ndi.gaussian_filter(core.astype(np.float64), sigma=sigma_mm / zooms)
    return (prior / prior.max()).astype(np.float32)


def wmh_mask(
    flair: np.ndarray,
    brain: np.ndarray,
    prior: np.ndarray | None,
    zooms: Sequence[float],
    *,
    k_sd: float = 1.3,
    prior_min: float = 0.1,
    sigma_mm: float = 1.0,
    min_smoothed: float = 0.1,
    min_z: float = 0.95,
) -> np.ndarray:
    """Boolean WMH mask of a brain-extracted FLAIR (paper 3.8.3); every threshold is a parameter (config).

    ``prior`` is the lesion-distribution template on the FLAIR's grid (``None`` keeps every candidate).
    """
    brain = np.asarray(brain, bool)
    if np.shape(flair) != brain.shape or (prior is not None and np.shape(prior) != brain.shape):
        raise ValueError("FLAIR, brain mask and lesion template must share one grid")
    z = zscore_in(flair, brain)
    allowed = brain if prior is None else brain & (np.asarray(prior) >= prior_min)
    candidates = allowed & (z > k_sd)
    sigma = sigma_mm / np.asarray(zooms, float)
    smoothed = ndi.gaussian_filter(candidates.astype(np.float64), sigma=sigma)
    return allowed & (smoothed >= min_smoothed) & (z >= min_z)
