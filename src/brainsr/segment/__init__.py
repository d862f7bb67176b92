"""Evaluation segmentations (paper 3.8.3): T1w tissue masks, multispectral classes, WMH and its lesion template."""

from brainsr.segment.tissue import CLASSES, T1_TISSUES, multispectral_classes, t1_tissues, zscore_in
from brainsr.segment.wmh import lesion_prior, wmh_mask

__all__ = ["CLASSES", "T1_TISSUES", "lesion_prior", "multispectral_classes", "t1_tissues", "wmh_mask", "zscore_in"]
