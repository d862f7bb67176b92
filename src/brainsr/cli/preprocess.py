"""``brainsr preprocess template|session|accuracy|gate|tables`` (called by workflow/rules/preprocess.smk)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from brainsr.cli.args import json_object, key_path

log = logging.getLogger("brainsr.preprocess")


def cmd_template(args: argparse.Namespace) -> int:
    """Template brain and mask on the analysis grid."""
    from brainsr.preprocess.template import load_template, write_grid

    tpl, msk = load_template(args.template_image or "", args.template_mask or "")
    write_grid(args.out_image, args.out_mask, tpl, msk, args.spacing, args.margin)
    return 0


def cmd_session(args: argparse.Namespace) -> int:
    """Preprocess one session: every prep's images, transforms and QC."""
    from brainsr.preprocess.chain import preprocess_session
    from brainsr.preprocess.layout import PrepLayout

    images = dict(args.image)
    seconds = preprocess_session(
        images,
        layout=PrepLayout(str(args.root), args.space, tuple(images)),
        subject=args.subject,
        session=args.session,
        preps=args.preps,
        pre=args.settings_json,
        template=args.template,
        template_mask=args.template_mask,
        manual_mask=args.manual_mask,
    )
    log.info("%s: %s", "session", json.dumps(seconds, default=float))
    return 0


def cmd_accuracy(args: argparse.Namespace) -> int:
    """Accuracy of one session's preprocessing against the synthetic ground truth."""
    from brainsr.preprocess.report import write_session_accuracy

    write_session_accuracy(json.loads(Path(args.spec).read_text()) if args.spec else args.spec_json, args.out)
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    """Group tables of the preprocessing: alignment quality, accuracy, summary."""
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


def cmd_gate(args: argparse.Namespace) -> int:
    """The preprocessing QC gate: decide new sessions, keep earlier decisions (brainsr.preprocess.gate)."""
    from brainsr.preprocess.gate import update_gate

    table = update_gate(args.quality, args.ledger, args.settings_json, args.prep, args.out)
    failed = table[table["final"] == "fail"]
    log.info("QC gate: %d sessions, %d failed %s", len(table), len(failed), list(failed["subject"]))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``brainsr preprocess`` and its subcommands."""
    pre = sub.add_parser("preprocess", help="bias correction, brain extraction, alignment, resampling (paper 3.1)")
    pre_sub = pre.add_subparsers(dest="what", required=True, metavar="STEP")
    kv = {"type": key_path, "action": "extend", "nargs": "+", "metavar": "KEY=PATH"}

    q = pre_sub.add_parser("template", help="template brain and mask on the analysis grid (crop box of the ICV)")
    q.add_argument("--template-image", help="template T1w brain (default: nilearn MNI152 2009)")
    q.add_argument("--template-mask", help="its brain mask")
    q.add_argument("--spacing", type=float, required=True, help="voxel size of the analysis grid (mm)")
    q.add_argument("--margin", type=float, required=True, help="margin around the mask's bounding box (mm)")
    q.add_argument("--out-image", required=True, type=Path)
    q.add_argument("--out-mask", required=True, type=Path)
    q.set_defaults(func=cmd_template)

    q = pre_sub.add_parser(
        "session", help="one session: bias correction, brain extraction, template transforms, preps, QC"
    )
    q.add_argument("--image", required=True, help="raw image per sequence (T1w first)", **kv)
    q.add_argument("--root", required=True, type=Path, help="preprocessing derivatives folder")
    q.add_argument("--space", required=True, help="template space label of the outputs")
    q.add_argument("--subject", required=True)
    q.add_argument("--session", required=True)
    q.add_argument("--preps", nargs="+", required=True, help="alignment x variant labels to build")
    q.add_argument("--template", required=True, help="template on the analysis grid")
    q.add_argument("--template-mask", required=True)
    q.add_argument("--manual-mask", help="user-edited mask replacing the automatic one")
    q.add_argument("--settings-json", required=True, type=json_object, help="config 'preprocess' section")
    q.set_defaults(func=cmd_session)

    q = pre_sub.add_parser("accuracy", help="accuracy of one session against the synthetic ground truth")
    q.add_argument("--spec-json", type=json_object, help="files of the session (see brainsr.preprocess.report)")
    q.add_argument("--spec", help="the same, in a JSON file")
    q.add_argument("--out", required=True)
    q.set_defaults(func=cmd_accuracy)

    q = pre_sub.add_parser("gate", help="QC gate: which sessions to train on and report with the rest")
    q.add_argument("--quality", nargs="*", default=[], help="the alignment-QC tables of the sessions to decide")
    q.add_argument("--ledger", required=True, help="decisions made so far (frozen; new sessions are added)")
    q.add_argument("--settings-json", required=True, type=json_object, help="config 'preprocess.qc_gate'")
    q.add_argument("--prep", required=True, help="the prep whose alignment is judged (config 'preprocess.primary')")
    q.add_argument("--out", required=True, help="the gate table of these sessions")
    q.set_defaults(func=cmd_gate)

    q = pre_sub.add_parser("tables", help="group tables: alignment quality, accuracy, summary")
    q.add_argument("--quality", nargs="+", required=True)
    q.add_argument("--accuracy", nargs="*")
    q.add_argument("--participants", required=True)
    q.add_argument("--out-quality", required=True)
    q.add_argument("--out-accuracy")
    q.add_argument("--out-summary")
    q.set_defaults(func=cmd_tables)
