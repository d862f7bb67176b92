"""``brainsr evaluate image|quality|agreement|scanset``: the evaluation files of one scan set (paper 3.8.1, 3.8.3)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from brainsr import AXES
from brainsr.cli.args import json_object, key_value_pairs
from brainsr.metrics import SCAN_SET_OUTPUTS

if TYPE_CHECKING:
    from brainsr.metrics.evaluate import TruthPath


def cmd_image(args: argparse.Namespace) -> int:
    """MAE, NMSE, PSNR, SSIM of a method's scans against the research scans, as a JSON file."""
    from brainsr.io import atomic_write_json
    from brainsr.metrics.evaluate import evaluate_images, image_metrics_record

    method, research = key_value_pairs(args.method, "--method"), key_value_pairs(args.research, "--research")
    atomic_write_json(image_metrics_record(evaluate_images(method, research, args.mask, args.axis)), args.out)
    return 0


def cmd_quality(args: argparse.Namespace) -> int:
    """Quality metrics of each image on the research T1w's tissues, as a JSON file."""
    from brainsr.io import atomic_write_json
    from brainsr.metrics.evaluate import evaluate_quality

    atomic_write_json(evaluate_quality(key_value_pairs(args.image, "--image"), args.tissues, args.mask), args.out)
    return 0


def cmd_agreement(args: argparse.Namespace) -> int:
    """Overlap of a segmentation's classes with the research scan's and/or the ground truth, as a JSON file."""
    from brainsr.io import atomic_write_json
    from brainsr.metrics.evaluate import evaluate_agreement

    result = evaluate_agreement(args.seg, args.reference, args.truth, args.lookup, truth_path=_truth_path(args))
    atomic_write_json(result, args.out)
    return 0


def _truth_path(args: argparse.Namespace) -> TruthPath | None:
    """The ``--truth-chain/--truth-pose/--truth-field`` options as a TruthPath (None when not given)."""
    from brainsr.metrics.evaluate import TruthPath

    given = [args.truth_chain, args.truth_pose, args.truth_field]
    if not any(given):
        return None
    if not all(given):
        raise ValueError("--truth-chain, --truth-pose and --truth-field go together")
    return TruthPath(tuple(args.truth_chain), args.truth_pose, args.truth_field)


def _add_truth_options(q: argparse.ArgumentParser) -> None:
    q.add_argument("--truth", help="ground-truth tissue labels, template frame (agreement)")
    q.add_argument("--lookup", help="the ground truth's dseg lookup TSV (index, name)")
    q.add_argument("--truth-chain", nargs="+", metavar="XFM", help="the prep's template -> native T1w transforms")
    q.add_argument("--truth-pose", help="the session's true from-subject_to-T1w pose (text 4x4)")
    q.add_argument("--truth-field", help="the true from-subject_to-template coordinate field")


def cmd_scanset(args: argparse.Namespace) -> int:
    """Every evaluation output of one scan set (the workflow's one job per scan set)."""
    from brainsr.metrics.scanset import ScanSetInputs, evaluate_scan_set

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
        truth_path=_truth_path(args),
    )
    out = key_value_pairs(args.out, "--out")
    evaluate_scan_set(inputs, out, seed=args.seed, components=args.components, wmh=args.wmh_json, axis=args.axis)
    return 0


def _add_scanset_parser(ev_sub: argparse._SubParsersAction) -> None:
    q = ev_sub.add_parser("scanset", help="every evaluation output of one scan set in one call (one workflow job)")
    q.add_argument("--image", nargs="+", required=True, metavar="SEQ=PATH", help="FLAIR, T2w and T1w of the set")
    q.add_argument("--mask", required=True, help="the set's brain mask (grid of its classes)")
    q.add_argument("--prior", help="lesion-distribution template on the same grid")
    q.add_argument("--research", nargs="+", metavar="SEQ=PATH", help="research scans of the same prep (imagemetrics)")
    q.add_argument("--research-mask", help="research brain mask of the same prep (default --mask)")
    q.add_argument("--tissues", help="research T1w CSF/GM/WM labels (quality), unless a tissues output is made")
    q.add_argument("--reference", help="the research scan's classes image (agreement)")
    _add_truth_options(q)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--components", type=int, default=4, help="T1w tissue mixture components (>= 3)")
    q.add_argument(
        "--wmh-json", type=json_object, help="WMH parameters (k_sd, prior_min, sigma_mm, min_smoothed, min_z)"
    )
    q.add_argument("--axis", default="axial", choices=sorted(AXES))
    q.add_argument(
        "--out", nargs="+", required=True, metavar="KIND=PATH", help=f"outputs; KIND: {', '.join(SCAN_SET_OUTPUTS)}"
    )
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
    _add_truth_options(q)
    q.add_argument("--out", required=True, type=Path)
    q.set_defaults(func=cmd_agreement)
    _add_scanset_parser(ev_sub)
