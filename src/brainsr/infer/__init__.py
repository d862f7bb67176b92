"""Inference: upsample clinical scan sets with a trained model (paper 3.6), attention masks and Grad-CAM (3.7)."""

from brainsr.infer.predict import (
    InferenceSettings,
    explain_slices,
    prepare_for_inference,
    upsample_volume,
)

__all__ = ["InferenceSettings", "explain_slices", "prepare_for_inference", "upsample_volume"]
