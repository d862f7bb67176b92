"""``brainsr evaluate``: per-scan image-similarity and quality-metric files (paper 3.8.1), and ``scanset``: every
evaluation file of one scan set in one call (:mod:`brainsr.metrics.scanset`, the workflow's one job per scan set)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from brainsr.data.volumes import AXES
from brainsr.io import atomic_write_json
from brainsr.metrics.agreement import overlap_metrics
from brainsr.metrics.quality import quality_metrics
from brainsr.preprocess.images import Loader, load_checked, load_mask, load_on_grid, zooms_mm
from brainsr.segment.tissue import T1_TISSUES

__all__ = [
    "add_parser",
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


def evaluate_agreement(
    seg: str,
    reference: str | None = None,
    truth: str | None = None,
    lookup: str | None = None,
    *,
    load: Loader = load_checked,
) -> dict[str, dict[str, dict[str, float]]]:
    """Overlap of each evaluated class of ``seg`` with the research scan's segmentation and/or the ground truth.

    Both label images are judged inside the union of their brains (label > 0), so that the true-negative fraction
    counts brain voxels, not the empty field of view (Tables S3-S6). The ground truth (``truth``, named by the
    ``lookup`` table) may be on a finer grid of the same space: it is resampled by nearest neighbour.
    Returns ``{"research": {class: metrics}, "truth": {class: metrics}}`` for the references given; ``load`` reads
    the images.
    """
    from brainsr.preprocess.template import resample_to_grid
    from brainsr.segment.commands import class_masks, truth_masks

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
        gt_img = load(truth)
        gt = resample_to_grid(gt_img, img.affine, img.shape, order=0, smooth=False)
        gt_labels = np.rint(np.asarray(gt.dataobj)).astype(int)
        gt_masks = truth_masks(gt_labels, read_lookup(lookup))
        region = (labels > 0) | np.any(list(gt_masks.values()), axis=0)
        out["truth"] = {k: overlap_metrics(masks[k], m, region) for k, m in gt_masks.items()}
    if not out:
        raise ValueError("agreement needs a research segmentation, a ground truth, or both")
    return out


def cmd_image(args: argparse.Namespace) -> int:
    from brainsr.superres_cli import key_value_pairs

    method, research = key_value_pairs(args.method, "--method"), key_value_pairs(args.research, "--research")
    atomic_write_json(image_metrics_record(evaluate_images(method, research, args.mask, args.axis)), args.out)
    return 0


def cmd_quality(args: argparse.Namespace) -> int:
    from brainsr.superres_cli import key_value_pairs

    atomic_write_json(evaluate_quality(key_value_pairs(args.image, "--image"), args.tissues, args.mask), args.out)
    return 0


def cmd_agreement(args: argparse.Namespace) -> int:
    atomic_write_json(evaluate_agreement(args.seg, args.reference, args.truth, args.lookup), args.out)
    return 0


def cmd_scanset(args: argparse.Namespace) -> int:
    from brainsr.metrics.scanset import ScanSetInputs, evaluate_scan_set
    from brainsr.superres_cli import key_value_pairs

    inputs = ScanSetInputs(
        images=key_value_pairs(args.image, "--image"),
        mask=args.mask,
        prior=args.prior,
        research=key_value_pairs(args.research, "--research"),
        research_mask=args.research_mask,
        tissues=args.tissues,
        reference=args.reference,
        truth=args.truth,
        lookup=args.lookup,
    )
    out = key_value_pairs(args.out, "--out")
    evaluate_scan_set(inputs, out, seed=args.seed, components=args.components, wmh=args.wmh_json, axis=args.axis)
    return 0


def _add_scanset_parser(ev_sub: argparse._SubParsersAction) -> None:
    from brainsr.cli import _json_arg
    from brainsr.metrics.scanset import OUTPUTS

    q = ev_sub.add_parser("scanset", help="every evaluation output of one scan set in one call (one workflow job)")
    q.add_argument("--image", nargs="+", required=True, metavar="SEQ=PATH", help="FLAIR, T2w and T1w of the set")
    q.add_argument("--mask", required=True, help="the set's brain mask (grid of its classes)")
    q.add_argument("--prior", help="lesion-distribution template on the same grid")
    q.add_argument("--research", nargs="+", metavar="SEQ=PATH", help="research scans of the same prep (imagemetrics)")
    q.add_argument("--research-mask", help="research brain mask of the same prep (default --mask)")
    q.add_argument("--tissues", help="research T1w CSF/GM/WM labels (quality), unless a tissues output is made")
    q.add_argument("--reference", help="the research scan's classes image (agreement)")
    q.add_argument("--truth", help="ground-truth tissue labels in the same space (agreement)")
    q.add_argument("--lookup", help="the ground truth's dseg lookup TSV (index, name)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--components", type=int, default=4, help="T1w tissue mixture components (>= 3)")
    q.add_argument("--wmh-json", type=_json_arg, help="WMH parameters (k_sd, prior_min, sigma_mm, min_smoothed, min_z)")
    q.add_argument("--axis", default="axial", choices=sorted(AXES))
    q.add_argument("--out", nargs="+", required=True, metavar="KIND=PATH", help=f"outputs; KIND: {', '.join(OUTPUTS)}")
    q.set_defaults(func=cmd_scanset)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``brainsr evaluate image|quality|agreement|scanset``."""
    ev = sub.add_parser("evaluate", help="image similarity and quality metrics of one scan set (paper 3.8.1)")
    ev_sub = ev.add_subparsers(dest="what", required=True, metavar="WHAT")
    q = ev_sub.add_parser("image", help="MAE, NMSE, PSNR, SSIM of a method's scans against the research scans")
    q.add_argument("--method", nargs="+", required=True, metavar="SEQ=PATH")
    q.add_argument("--research", nargs="+", required=True, metavar="SEQ=PATH")
    q.add_argument("--mask", required=True, help="brain mask on the same grid")
    q.add_argument("--axis", default="axial", choices=sorted(AXES))
    q.add_argument("--out", required=True, type=Path)
    q.set_defaults(func=cmd_image)
    q = ev_sub.add_parser("quality", help="CJV, EFC, FWHM, WM2max, tissue statistics of each image")
    q.add_argument("--image", nargs="+", required=True, metavar="NAME=PATH")
    q.add_argument("--tissues", required=True, help="CSF/GM/WM labels (1/2/3) from the research T1w")
    q.add_argument("--mask", required=True)
    q.add_argument("--out", required=True, type=Path)
    q.set_defaults(func=cmd_quality)
    q = ev_sub.add_parser("agreement", help="Dice, Jaccard, TPF, TNF, PPV of a segmentation per class")
    q.add_argument("--seg", required=True, help="classes image (brainsr segment classes) judged")
    q.add_argument("--reference", help="the research scan's classes image on the same grid")
    q.add_argument("--truth", help="ground-truth tissue labels in the same space (any grid)")
    q.add_argument("--lookup", help="the ground truth's dseg lookup TSV (index, name)")
    q.add_argument("--out", required=True, type=Path)
    q.set_defaults(func=cmd_agreement)
    _add_scanset_parser(ev_sub)
