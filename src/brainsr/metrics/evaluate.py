"""Evaluation of one scan set from its files (paper 3.8.1, 3.8.3): image similarity against the research scans,
quality metrics on the research T1w's tissues, agreement of segmentations (``brainsr evaluate image|quality|
agreement``; :mod:`brainsr.metrics.scanset` runs them all in the workflow's one job per scan set)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from brainsr import AXES
from brainsr.base.images import Loader, load_checked, load_mask, load_on_grid, zooms_mm
from brainsr.metrics.agreement import overlap_metrics
from brainsr.metrics.quality import quality_metrics
from brainsr.segment.tissue import T1_TISSUES

if TYPE_CHECKING:
    import nibabel as nib

__all__ = [
    "TruthPath",
    "evaluate_agreement",
    "evaluate_images",
    "evaluate_quality",
    "image_metrics_record",
    "read_lookup",
]


def evaluate_images(
    method: Mapping[str, str],
    research: Mapping[str, str],
    mask: str,
    axis: str = "axial",
    *,
    load: Loader = load_checked,
) -> dict[str, dict[str, float]]:
    """Image metrics of each sequence of ``method`` against the research scan, in the brain and over the FOV.

    Returns ``{sequence: {f"{metric}_{region}": value}, "mean": the mean over sequences}``; ``load`` reads the images.
    """
    from brainsr.metrics.image import image_metrics  # torch: imported by the commands that need it

    if set(method) != set(research):
        raise ValueError(f"method sequences {sorted(method)} and research sequences {sorted(research)} differ")
    brain, mask_img = load_mask(mask, load)
    out: dict[str, dict[str, float]] = {}
    for seq in method:
        pred_img = load_on_grid(method[seq], mask_img, mask, load)
        ref_img = load_on_grid(research[seq], mask_img, mask, load)
        regions = {"brain": brain, "fov": None}
        out[seq] = image_metrics(np.asarray(pred_img.dataobj), np.asarray(ref_img.dataobj), regions, axis=AXES[axis])
    keys = next(iter(out.values())).keys()
    out["mean"] = {k: float(np.mean([out[s][k] for s in method])) for k in keys}
    return out


def image_metrics_record(result: Mapping[str, dict[str, float]]) -> dict:
    """The image-metrics file's content (paper 3.8.1): the metric names, then :func:`evaluate_images`'s result."""
    from brainsr.metrics.image import IMAGE_METRICS

    return {"metrics": list(IMAGE_METRICS), **result}


def evaluate_quality(
    images: Mapping[str, str], tissues: str, mask: str, *, load: Loader = load_checked
) -> dict[str, dict[str, float]]:
    """Quality metrics of each image with the CSF/GM/WM labels of ``tissues`` (1/2/3, :data:`T1_TISSUES`)."""
    brain, mask_img = load_mask(mask, load)
    lab_img = load_on_grid(tissues, mask_img, mask, load)
    labels = np.rint(np.asarray(lab_img.dataobj)).astype(int)
    masks = {name: labels == value for value, name in T1_TISSUES.items()}
    out = {}
    for name, path in images.items():
        img = load_on_grid(path, mask_img, mask, load)
        out[name] = quality_metrics(np.asarray(img.dataobj), masks, brain, zooms_mm(img))
    return out


def read_lookup(path: str) -> dict[str, int]:
    """``{name: index}`` of a BIDS dseg lookup table (``index`` and ``name`` columns)."""
    import pandas as pd

    table = pd.read_csv(path, sep="\t")
    if not {"index", "name"} <= set(table.columns):
        raise ValueError(f"{path}: a dseg lookup needs 'index' and 'name' columns, has {list(table.columns)}")
    return {str(n): int(i) for n, i in zip(table["name"], table["index"], strict=True)}


@dataclass(frozen=True)
class TruthPath:
    """How the template-frame ground truth reaches a preprocessed scan set's grid (:func:`truth_on_grid`): the
    prep's transform chain (template -> native T1w), the session's true pose file and the true subject-to-template
    coordinate field."""

    chain: Sequence[str]
    pose: str
    field: str


def _truth_labels(img: nib.Nifti1Image, truth: str, path: TruthPath | None, load: Loader) -> np.ndarray:
    """The ground-truth labels on ``img``'s grid: through the scan set's own preprocessing (``path``), or, without
    it, the template-frame truth resampled by nearest neighbour."""
    if path is not None:
        from brainsr.preprocess.qc import truth_on_grid

        return truth_on_grid(img, load(truth), path.chain, path.pose, path.field).astype(int)
    from brainsr.preprocess.template import resample_to_grid

    gt = resample_to_grid(load(truth), img.affine, img.shape, order=0, smooth=False)
    return np.rint(np.asarray(gt.dataobj)).astype(int)


def evaluate_agreement(
    seg: str,
    reference: str | None = None,
    truth: str | None = None,
    lookup: str | None = None,
    *,
    truth_path: TruthPath | None = None,
    load: Loader = load_checked,
) -> dict[str, dict[str, dict[str, float]]]:
    """Overlap of each evaluated class of ``seg`` with the research scan's segmentation and/or the ground truth.

    Both label images are judged inside the union of their brains (label > 0), so that the true-negative fraction
    counts brain voxels, not the empty field of view (Tables S3-S6). The ground truth (``truth``, template frame,
    named by the ``lookup`` table) is brought to ``seg``'s grid through the scan set's preprocessing when
    ``truth_path`` is given (the workflow's way), else resampled by nearest neighbour.
    Returns ``{"research": {class: metrics}, "truth": {class: metrics}}`` for the references given; ``load`` reads
    the images.
    """
    from brainsr.segment.run import class_masks, truth_masks

    img = load(seg)
    labels = np.rint(np.asarray(img.dataobj)).astype(int)
    masks = class_masks(labels)
    out: dict[str, dict[str, dict[str, float]]] = {}
    if reference:
        ref = np.rint(np.asarray(load_on_grid(reference, img, seg, load).dataobj)).astype(int)
        region = (labels > 0) | (ref > 0)
        out["research"] = {k: overlap_metrics(masks[k], m, region) for k, m in class_masks(ref).items()}
    if truth:
        if not lookup:
            raise ValueError("agreement with the ground truth needs its lookup table")
        gt_masks = truth_masks(_truth_labels(img, truth, truth_path, load), read_lookup(lookup))
        region = (labels > 0) | np.any(list(gt_masks.values()), axis=0)
        out["truth"] = {k: overlap_metrics(masks[k], m, region) for k, m in gt_masks.items()}
    if not out:
        raise ValueError("agreement needs a research segmentation, a ground truth, or both")
    return out
