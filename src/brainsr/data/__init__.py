"""Paired clinical / research volumes, whole slices and patches for the super-resolution models (paper 3.2).

The package folder also ships the configuration schema (``config.schema.yaml``) as package data.
"""

from brainsr.lazy import lazy_exports

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
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "PatchDataset": "brainsr.data.datasets",
        "SliceDataset": "brainsr.data.datasets",
        "patch_locations": "brainsr.data.datasets",
        "predict_patches": "brainsr.data.datasets",
        "AXES": "brainsr.data.volumes",
        "ScanPair": "brainsr.data.volumes",
        "crop_hw": "brainsr.data.volumes",
        "from_slices": "brainsr.data.volumes",
        "load_pair": "brainsr.data.volumes",
        "load_stack": "brainsr.data.volumes",
        "pad_hw": "brainsr.data.volumes",
        "padded_size": "brainsr.data.volumes",
        "to_slices": "brainsr.data.volumes",
    },
)
