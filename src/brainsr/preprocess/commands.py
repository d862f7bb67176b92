"""``brainsr preprocess ...`` subcommands (called by workflow/rules/preprocess.smk)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger("brainsr.preprocess")


def _pairs(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` command-line item."""
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected KEY=PATH, got {text!r}")
    return key, value


def _log_times(what: str, info: dict) -> None:
    log.info("%s: %s", what, json.dumps(info, default=float))


def cmd_template(args: argparse.Namespace) -> int:
    from brainsr.preprocess.template import load_template, write_grid

    tpl, msk = load_template(args.template_image or "", args.template_mask or "")
    write_grid(args.out_image, args.out_mask, tpl, msk, args.spacing, args.margin)
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from brainsr.preprocess.pipeline import prepare_session

    s = args.settings_json
    info = prepare_session(
        dict(args.image),
        out_brain=dict(args.out_brain),
        out_mask=args.out_mask,
        out_xfm=dict(args.out_xfm or []),
        bias=s["bias"],
        brain=s["brain"],
        manual_mask=args.manual_mask,
        iso_mm=float(s["iso_mm"]),
        level_mm=float(s["level_mm"]),
    )
    _log_times("prepare", info)
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    from brainsr.preprocess.pipeline import register_session

    s = args.settings_json
    info = register_session(
        args.brain_t1w,
        args.mask,
        args.template,
        args.template_mask,
        key=args.key,
        out=args.out,
        out_inverse=args.inverse,
        initial=args.initial,
        level_mm=float(s["level_mm"]),
        syn_iterations=tuple(s["syn_iterations"]),
    )
    _log_times(f"register {args.key}", info)
    return 0


def cmd_resample(args: argparse.Namespace) -> int:
    from brainsr.preprocess.pipeline import resample_session

    info = resample_session(
        dict(args.brain),
        args.mask,
        args.template,
        args.xfm_template,
        dict(args.xfm or []),
        interpolation=args.interpolation,
        percentiles=(args.percentiles[0], args.percentiles[1]),
        core_mm=args.core_mm,
        out_images=dict(args.out),
        out_mask=args.out_mask,
        prep=args.prep,
    )
    _log_times("resample", info)
    return 0


def cmd_qc(args: argparse.Namespace) -> int:
    from brainsr.preprocess.report import session_qc

    session_qc(
        images={prep: dict(v) for prep, v in _group(args.image).items()},
        masks=dict(args.mask),
        template=args.template,
        template_mask=args.template_mask,
        primary=args.primary,
        title=args.title,
        figure=args.figure,
        table=args.table,
    )
    return 0


def _group(items: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """``PREP:SEQ=PATH`` items grouped by prep."""
    out: dict[str, list[tuple[str, str]]] = {}
    for key, path in items:
        prep, _, seq = key.partition(":")
        out.setdefault(prep, []).append((seq, path))
    return out


def cmd_accuracy(args: argparse.Namespace) -> int:
    from brainsr.preprocess.report import write_session_accuracy

    write_session_accuracy(json.loads(Path(args.spec).read_text()) if args.spec else args.spec_json, args.out)
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    from brainsr.preprocess.report import write_group_tables

    write_group_tables(
        quality=args.quality,
        accuracy=args.accuracy or [],
        participants=args.participants,
        out_quality=args.out_quality,
        out_accuracy=args.out_accuracy,
        out_summary=args.out_summary,
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``brainsr preprocess`` and its subcommands."""
    from brainsr.cli import _json_arg as _json_obj

    pre = sub.add_parser("preprocess", help="bias correction, brain extraction, alignment, resampling (paper 3.1)")
    pre_sub = pre.add_subparsers(dest="what", required=True, metavar="STEP")
    kv = {"type": _pairs, "action": "extend", "nargs": "+", "metavar": "KEY=PATH"}

    q = pre_sub.add_parser("template", help="template brain and mask on the analysis grid (crop box of the ICV)")
    q.add_argument("--template-image", help="template T1w brain (default: nilearn MNI152 2009)")
    q.add_argument("--template-mask", help="its brain mask")
    q.add_argument("--spacing", type=float, required=True, help="voxel size of the analysis grid (mm)")
    q.add_argument("--margin", type=float, required=True, help="margin around the mask's bounding box (mm)")
    q.add_argument("--out-image", required=True, type=Path)
    q.add_argument("--out-mask", required=True, type=Path)
    q.set_defaults(func=cmd_template)

    q = pre_sub.add_parser("prepare", help="bias correction, intra-session alignment, brain extraction")
    q.add_argument("--image", required=True, help="raw image per sequence (T1w first)", **kv)
    q.add_argument("--out-brain", required=True, help="brain-extracted native image per sequence", **kv)
    q.add_argument("--out-xfm", help="sequence -> T1w rigid transform per non-T1w sequence", **kv)
    q.add_argument("--out-mask", required=True, help="brain mask (isotropic grid, T1w space)")
    q.add_argument("--manual-mask", help="user-edited mask replacing the automatic one")
    q.add_argument("--settings-json", required=True, type=_json_obj, help="config 'preprocess' section")
    q.set_defaults(func=cmd_prepare)

    q = pre_sub.add_parser("register", help="the session T1w to the template (rigid, affine, warp)")
    q.add_argument("--brain-t1w", required=True)
    q.add_argument("--mask", required=True)
    q.add_argument("--template", required=True)
    q.add_argument("--template-mask", required=True)
    q.add_argument("--key", required=True, help="transform to estimate: rigidcr, rigidmi, affinecr, affinemi, warp")
    q.add_argument("--out", required=True, help="transform file (resamples the T1w into the template)")
    q.add_argument("--inverse", required=True, help="inverse transform file")
    q.add_argument("--initial", help="initial transform (warp: affinemi; rigidcr/affinecr: rigidmi/affinemi)")
    q.add_argument("--settings-json", required=True, type=_json_obj)
    q.set_defaults(func=cmd_register)

    q = pre_sub.add_parser("resample", help="every sequence onto the analysis grid, masked, rescaled to [0, 1]")
    q.add_argument("--brain", required=True, help="brain-extracted native image per sequence", **kv)
    q.add_argument("--mask", required=True)
    q.add_argument("--template", required=True, help="template on the analysis grid")
    q.add_argument("--xfm-template", required=True)
    q.add_argument("--xfm", help="sequence -> T1w transform per non-T1w sequence", **kv)
    q.add_argument("--interpolation", required=True)
    q.add_argument("--percentiles", type=float, nargs=2, required=True)
    q.add_argument("--core-mm", type=float, default=0.0, help="percentiles only deeper than this in the mask")
    q.add_argument("--prep", required=True, help="alignment x variant label")
    q.add_argument("--out", required=True, **kv)
    q.add_argument("--out-mask", required=True)
    q.set_defaults(func=cmd_resample)

    q = pre_sub.add_parser("qc", help="per-session alignment figure and alignment-quality table")
    q.add_argument("--image", required=True, help="PREP:SEQ=PATH per prep and sequence", **kv)
    q.add_argument("--mask", required=True, help="PREP=PATH", **kv)
    q.add_argument("--template", required=True)
    q.add_argument("--template-mask", required=True)
    q.add_argument("--primary", required=True, help="prep shown in the figure")
    q.add_argument("--title", required=True)
    q.add_argument("--figure", required=True)
    q.add_argument("--table", required=True)
    q.set_defaults(func=cmd_qc)

    q = pre_sub.add_parser("accuracy", help="accuracy of one session against the synthetic ground truth")
    q.add_argument("--spec-json", type=_json_obj, help="files of the session (see brainsr.preprocess.report)")
    q.add_argument("--spec", help="the same, in a JSON file")
    q.add_argument("--out", required=True)
    q.set_defaults(func=cmd_accuracy)

    q = pre_sub.add_parser("tables", help="group tables: alignment quality, accuracy, summary")
    q.add_argument("--quality", nargs="+", required=True)
    q.add_argument("--accuracy", nargs="*")
    q.add_argument("--participants", required=True)
    q.add_argument("--out-quality", required=True)
    q.add_argument("--out-accuracy")
    q.add_argument("--out-summary")
    q.set_defaults(func=cmd_tables)
