"""Evaluation metrics (paper 3.8): image similarity, clinical quality metrics, segmentation and volume agreement."""

from brainsr.metrics.agreement import OVERLAP_METRICS, BlandAltman, bland_altman, overlap_metrics, volume_ml
from brainsr.metrics.image import IMAGE_METRICS, image_metrics, mae, mse, nmse, nmse_paper, psnr, ssim_slices
from brainsr.metrics.quality import cjv, efc, fwhm, mad, quality_metrics, tissue_ratios, tissue_stats, wm2max

__all__ = [
    "IMAGE_METRICS",
    "OVERLAP_METRICS",
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
