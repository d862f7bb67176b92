"""``brainsr evaluate``: per-scan image-similarity and quality-metric files (paper 3.8.1) for the workflow rules."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from brainsr.data.volumes import AXES
from brainsr.io import atomic_write_text
from brainsr.metrics.image import IMAGE_METRICS, image_metrics
from brainsr.metrics.quality import quality_metrics
from brainsr.preprocess.images import load_mask, load_on_grid, zooms_mm
from brainsr.segment.tissue import T1_TISSUES

__all__ = ["add_parser", "evaluate_images", "evaluate_quality"]


def evaluate_images(
    method: Mapping[str, str], research: Mapping[str, str], mask: str, axis: str = "axial"
) -> dict[str, dict[str, float]]:
    """Image metrics of each sequence of ``method`` against the research scan, in the brain and over the FOV.

    Returns ``{sequence: {f"{metric}_{region}": value}, "mean": the mean over sequences}``.
    """
    if set(method) != set(research):
        raise ValueError(f"method sequences {sorted(method)} and research sequences {sorted(research)} differ")
    brain, mask_img = load_mask(mask)
    out: dict[str, dict[str, float]] = {}
    for seq in method:
        pred_img = load_on_grid(method[seq], mask_img, mask)
        ref_img = load_on_grid(research[seq], mask_img, mask)
        regions = {"brain": brain, "fov": None}
        out[seq] = image_metrics(np.asarray(pred_img.dataobj), np.asarray(ref_img.dataobj), regions, axis=AXES[axis])
    keys = next(iter(out.values())).keys()
    out["mean"] = {k: float(np.mean([out[s][k] for s in method])) for k in keys}
    return out


def evaluate_quality(images: Mapping[str, str], tissues: str, mask: str) -> dict[str, dict[str, float]]:
    """Quality metrics of each image with the CSF/GM/WM labels of ``tissues`` (1/2/3, :data:`T1_TISSUES`)."""
    brain, mask_img = load_mask(mask)
    lab_img = load_on_grid(tissues, mask_img, mask)
    labels = np.rint(np.asarray(lab_img.dataobj)).astype(int)
    masks = {name: labels == value for value, name in T1_TISSUES.items()}
    out = {}
    for name, path in images.items():
        img = load_on_grid(path, mask_img, mask)
        out[name] = quality_metrics(np.asarray(img.dataobj), masks, brain, zooms_mm(img))
    return out


def _write(result: dict, path: str) -> None:
    atomic_write_text(json.dumps(result, indent=2, sort_keys=True, allow_nan=True) + "\n", path)


def cmd_image(args: argparse.Namespace) -> int:
    from brainsr.superres_cli import key_value_pairs

    result = evaluate_images(
        key_value_pairs(args.method, "--method"), key_value_pairs(args.research, "--research"), args.mask, args.axis
    )
    _write({"metrics": list(IMAGE_METRICS), **result}, args.out)
    return 0


def cmd_quality(args: argparse.Namespace) -> int:
    from brainsr.superres_cli import key_value_pairs

    _write(evaluate_quality(key_value_pairs(args.image, "--image"), args.tissues, args.mask), args.out)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``brainsr evaluate image`` and ``brainsr evaluate quality``."""
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
