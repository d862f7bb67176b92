"""Evaluation segmentations of one scan set from its files (paper 3.8.1, 3.8.3; ``brainsr segment``).

- ``tissues``: CSF/GM/WM labels from the research T1w (the masks every method's quality metrics use);
- ``classes``: the multispectral classes + WMH of one scan set (research, upsampled or interpolated) as one
  label image (1 CSF, 2 veins/sinuses, 3 pial layers, 4 normal tissue, 5 WMH) and a JSON of volumes in ml;
- ``prior``: the lesion-distribution template on the analysis grid, from nilearn's MNI152 WM probability map.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import nibabel as nib
import numpy as np

from brainsr.base.arrays import volume_ml
from brainsr.base.images import Loader, load_checked, load_mask, load_on_grid, zooms_mm
from brainsr.io import atomic_save_nifti
from brainsr.segment.tissue import CLASSES, T1_TISSUES, multispectral_classes, t1_tissues
from brainsr.segment.wmh import lesion_prior, wmh_mask

__all__ = [
    "CLASS_LABELS",
    "LABELS",
    "TRUTH_CLASSES",
    "class_masks",
    "segment_classes",
    "segment_tissues",
    "template_lesion_prior",
    "truth_masks",
]

#: Labels of the ``classes`` image: the multispectral classes, with WMH (5) written over them.
LABELS: dict[int, str] = {**CLASSES, 5: "wmh"}
#: The evaluated classes (Tables S3-S6, Fig. 10) as label sets of the ``classes`` image; WMH is normal-appearing
#: tissue's hyperintense part, so ``tissue`` includes it.
CLASS_LABELS: dict[str, tuple[int, ...]] = {"csf": (1,), "sinus": (2,), "pial": (3,), "tissue": (4, 5), "wmh": (5,)}
#: The same classes as names in the synthetic cohort's ground-truth lookup (``desc-tissue_dseg.tsv``).
TRUTH_CLASSES: dict[str, tuple[str, ...]] = {
    "csf": ("csf",),
    "sinus": ("sinus",),
    "pial": ("pial",),
    "tissue": ("gm", "wm", "deep_gm", "wmh", "stroke"),
    "wmh": ("wmh",),
}


def _members(labels: np.ndarray, values: Sequence[int]) -> np.ndarray:
    """``np.isin(labels, values)`` for an integer label image, by a lookup table (one pass over the voxels)."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" or labels.size == 0 or labels.min() < 0:
        return np.isin(labels, values)
    top = int(labels.max())
    table = np.zeros(top + 1, bool)
    table[[v for v in values if 0 <= v <= top]] = True
    return table[labels]


def class_masks(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Binary mask of each evaluated class (:data:`CLASS_LABELS`) of a ``classes`` label image."""
    return {name: _members(labels, values) for name, values in CLASS_LABELS.items()}


def truth_masks(labels: np.ndarray, lookup: Mapping[str, int]) -> dict[str, np.ndarray]:
    """Binary mask of each evaluated class in a ground-truth label image, by the lookup's ``{name: index}``."""
    missing = sorted({n for names in TRUTH_CLASSES.values() for n in names} - set(lookup))
    if missing:
        raise ValueError(f"the ground-truth lookup has no label named {missing}")
    return {name: _members(labels, [lookup[n] for n in names]) for name, names in TRUTH_CLASSES.items()}


_SEQUENCES = ("FLAIR", "T2w", "T1w")


def _volumes(labels: np.ndarray, names: Mapping[int, str], zooms: tuple[float, ...]) -> dict[str, float]:
    out = {f"{name}_ml": volume_ml(labels == value, zooms) for value, name in names.items()}
    out["brain_ml"] = volume_ml(labels > 0, zooms)
    return out


def segment_tissues(
    t1: str, mask: str, out: str, seed: int = 0, n_components: int = 4, *, load: Loader = load_checked
) -> dict[str, float]:
    """CSF/GM/WM labels of a brain-extracted T1w (paper 3.8.1); returns their volumes in ml."""
    brain, ref = load_mask(mask, load)
    img = load_on_grid(t1, ref, mask, load)
    labels = t1_tissues(np.asarray(img.dataobj), brain, n_components=n_components, seed=seed)
    atomic_save_nifti(nib.Nifti1Image(labels, ref.affine), out)
    return _volumes(labels, T1_TISSUES, zooms_mm(ref))


def segment_classes(
    images: Mapping[str, str],
    mask: str,
    prior: str | None,
    out: str,
    *,
    seed: int = 0,
    wmh: Mapping | None = None,
    load: Loader = load_checked,
) -> dict[str, float]:
    """Multispectral classes and WMH of one scan set on one grid (paper 3.8.3); returns volumes in ml."""
    missing = set(_SEQUENCES) - set(images)
    if missing:
        raise ValueError(f"segmentation needs {list(_SEQUENCES)}; missing {sorted(missing)}")
    brain, ref = load_mask(mask, load)
    data = {seq: np.asarray(load_on_grid(images[seq], ref, mask, load).dataobj) for seq in _SEQUENCES}
    labels, _ = multispectral_classes(data["FLAIR"], data["T2w"], data["T1w"], brain, seed=seed)
    pri = np.asarray(load_on_grid(prior, ref, mask, load).dataobj) if prior else None
    lesions = wmh_mask(data["FLAIR"], brain, pri, zooms_mm(ref), **dict(wmh or {}))
    labels[lesions] = 5
    atomic_save_nifti(nib.Nifti1Image(labels, ref.affine), out)
    return _volumes(labels, LABELS, zooms_mm(ref))


def template_lesion_prior(grid: str, out: str, **kwargs: float) -> None:
    """Lesion-distribution template (:func:`lesion_prior`) from nilearn's MNI152 WM map, on ``grid``'s voxels."""
    from nilearn import datasets

    from brainsr.preprocess.template import resample_to_grid

    ref = load_checked(grid)
    wm = datasets.load_mni152_wm_template(resolution=1)
    wm = nib.Nifti1Image(np.asarray(wm.dataobj, np.float32), wm.affine)
    on_grid = np.asarray(resample_to_grid(wm, ref.affine, ref.shape, order=1).dataobj)
    atomic_save_nifti(nib.Nifti1Image(lesion_prior(on_grid, zooms_mm(ref), **kwargs), ref.affine), out)
