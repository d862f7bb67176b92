"""``brainsr segment tissues|classes|prior``: evaluation segmentations (paper 3.8.1, 3.8.3)."""

from __future__ import annotations

import argparse
from pathlib import Path

from brainsr.cli.args import json_object, key_value_pairs


def cmd_tissues(args: argparse.Namespace) -> int:
    """CSF/GM/WM labels of a brain-extracted T1w, and optionally their volumes as a JSON file."""
    from brainsr.io import atomic_write_json
    from brainsr.segment.run import segment_tissues

    volumes = segment_tissues(args.t1, args.mask, args.out, seed=args.seed, n_components=args.components)
    if args.out_json:
        atomic_write_json(volumes, args.out_json)
    return 0


def cmd_classes(args: argparse.Namespace) -> int:
    """Multispectral classes and WMH of one scan set, and optionally their volumes as a JSON file."""
    from brainsr.io import atomic_write_json
    from brainsr.segment.run import segment_classes

    images = key_value_pairs(args.image, "--image")
    result = segment_classes(images, args.mask, args.prior, args.out, seed=args.seed, wmh=args.wmh_json or {})
    if args.out_json:
        atomic_write_json(result, args.out_json)
    return 0


def cmd_prior(args: argparse.Namespace) -> int:
    """The lesion-distribution template on the analysis grid."""
    from brainsr.segment.run import template_lesion_prior

    template_lesion_prior(args.grid, args.out, **(args.params_json or {}))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``brainsr segment tissues|classes|prior``."""
    seg = sub.add_parser("segment", help="evaluation segmentations (paper 3.8.3)")
    seg_sub = seg.add_subparsers(dest="what", required=True, metavar="WHAT")
    q = seg_sub.add_parser("tissues", help="CSF/GM/WM labels of a brain-extracted T1w (Gaussian mixture)")
    q.add_argument("--t1", required=True)
    q.add_argument("--mask", required=True)
    q.add_argument("--out", required=True, type=Path)
    q.add_argument("--out-json", type=Path)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--components", type=int, default=4, help="mixture components (>= 3; see t1_tissues)")
    q.set_defaults(func=cmd_tissues)
    q = seg_sub.add_parser("classes", help="CSF, veins/sinuses, pial layers, normal tissue and WMH of a scan set")
    q.add_argument("--image", nargs="+", required=True, metavar="SEQ=PATH", help="FLAIR, T2w and T1w")
    q.add_argument("--mask", required=True)
    q.add_argument("--prior", help="lesion-distribution template on the same grid")
    q.add_argument(
        "--wmh-json", type=json_object, help="WMH parameters (k_sd, prior_min, sigma_mm, min_smoothed, min_z)"
    )
    q.add_argument("--out", required=True, type=Path)
    q.add_argument("--out-json", type=Path)
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=cmd_classes)
    q = seg_sub.add_parser("prior", help="lesion-distribution template on the analysis grid")
    q.add_argument("--grid", required=True, help="an image on the analysis grid (the template)")
    q.add_argument("--params-json", type=json_object, help="lesion_prior parameters (threshold, erode_mm, sigma_mm)")
    q.add_argument("--out", required=True, type=Path)
    q.set_defaults(func=cmd_prior)
