"""Evaluation metrics (paper 3.8): image similarity, clinical quality metrics, segmentation and volume agreement."""

from brainsr.lazy import lazy_exports

__all__ = [
    "IMAGE_METRICS",
    "OVERLAP_METRICS",
    "SCAN_SET_OUTPUTS",
    "BlandAltman",
    "bland_altman",
    "cjv",
    "efc",
    "fwhm",
    "image_metrics",
    "mad",
    "mae",
    "mse",
    "nmse",
    "nmse_paper",
    "overlap_metrics",
    "psnr",
    "quality_metrics",
    "ssim_slices",
    "tissue_ratios",
    "tissue_stats",
    "volume_ml",
    "wm2max",
]
#: The output files of one scan set (``brainsr evaluate scanset --out KIND=PATH``, :mod:`brainsr.metrics.scanset`);
#: the NIfTI ones are the label images.
SCAN_SET_OUTPUTS: tuple[str, ...] = (
    "tissues",
    "tissue_volumes",
    "imagemetrics",
    "quality",
    "dseg",
    "volumes",
    "agreement",
)
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "OVERLAP_METRICS": "brainsr.metrics.agreement",
        "BlandAltman": "brainsr.metrics.agreement",
        "bland_altman": "brainsr.metrics.agreement",
        "overlap_metrics": "brainsr.metrics.agreement",
        "volume_ml": "brainsr.base.arrays",
        "IMAGE_METRICS": "brainsr.metrics.image",
        "image_metrics": "brainsr.metrics.image",
        "mae": "brainsr.metrics.image",
        "mse": "brainsr.metrics.image",
        "nmse": "brainsr.metrics.image",
        "nmse_paper": "brainsr.metrics.image",
        "psnr": "brainsr.metrics.image",
        "ssim_slices": "brainsr.metrics.image",
        "cjv": "brainsr.metrics.quality",
        "efc": "brainsr.metrics.quality",
        "fwhm": "brainsr.metrics.quality",
        "mad": "brainsr.metrics.quality",
        "quality_metrics": "brainsr.metrics.quality",
        "tissue_ratios": "brainsr.metrics.quality",
        "tissue_stats": "brainsr.metrics.quality",
        "wm2max": "brainsr.metrics.quality",
    },
)
