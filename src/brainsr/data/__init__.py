"""Paired clinical / research volumes, whole slices and patches for the super-resolution models (paper 3.2).

The package folder also ships the configuration schema (``config.schema.yaml``) as package data.
"""

from brainsr.data.datasets import PatchDataset, SliceDataset, patch_locations, predict_patches
from brainsr.data.volumes import (
    AXES,
    ScanPair,
    crop_hw,
    from_slices,
    load_pair,
    load_stack,
    pad_hw,
    padded_size,
    to_slices,
)

__all__ = [
    "AXES",
    "PatchDataset",
    "ScanPair",
    "SliceDataset",
    "crop_hw",
    "from_slices",
    "load_pair",
    "load_stack",
    "pad_hw",
    "padded_size",
    "patch_locations",
    "predict_patches",
    "to_slices",
]
