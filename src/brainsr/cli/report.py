"""``brainsr report tables|figures|rating|benchmarks``: the paper's tables and figures, the rating sheet and the
jobs' resource table (paper 4)."""

from __future__ import annotations

import argparse
from pathlib import Path

from brainsr.cli.args import json_object


def cmd_tables(args: argparse.Namespace) -> int:
    """Group tables (Tables 1, 2, S1, S3-S6) and Figs. 10 and 13."""
    from brainsr.report.build import write_group_tables

    write_group_tables(args.spec_json, args.tables, args.figures, args.html)
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    """Figs. 5-9, 11 and 12 of one test subject."""
    from brainsr.report.build import write_subject_figures

    write_subject_figures(args.spec_json, args.figures)
    return 0


def cmd_rating(args: argparse.Namespace) -> int:
    """The blinded visual-rating sheet and its code key."""
    from brainsr.report.rating import write_rating_sheet

    write_rating_sheet(args.spec_json, args.images, args.sheet, args.key, seed=args.seed)
    return 0


def cmd_benchmarks(args: argparse.Namespace) -> int:
    """Per-rule wall time and peak memory (and optionally CPU by stage) from the benchmark files, written and shown."""
    from brainsr.io import atomic_write_tsv
    from brainsr.report.benchmarks import benchmark_table, stage_table

    table = benchmark_table(args.benchmarks, margin=args.margin)
    atomic_write_tsv(table, args.out)
    print(table.to_string(index=False))
    if args.out_stages:
        stages = stage_table(args.benchmarks)
        atomic_write_tsv(stages, args.out_stages)
        print(stages.to_string(index=False))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``brainsr report tables|figures|rating|benchmarks``."""
    rep = sub.add_parser("report", help="the paper's tables and figures, and the blinded rating sheet (paper 4)")
    rep_sub = rep.add_subparsers(dest="what", required=True, metavar="WHAT")
    q = rep_sub.add_parser("tables", help="group tables (Tables 1, 2, S1, S3-S6) and Figs. 10 and 13")
    q.add_argument("--spec-json", type=json_object, required=True, help="subjects, methods and file patterns")
    q.add_argument("--tables", required=True, type=Path, help="directory of the TSV tables")
    q.add_argument("--figures", required=True, type=Path, help="directory of the figures")
    q.add_argument("--html", type=Path, help="directory of the report tables as HTML pages (for the HTML report)")
    q.set_defaults(func=cmd_tables)
    q = rep_sub.add_parser("figures", help="Figs. 5-9, 11, 12 of one test subject")
    q.add_argument("--spec-json", type=json_object, required=True)
    q.add_argument("--figures", required=True, type=Path)
    q.set_defaults(func=cmd_figures)
    q = rep_sub.add_parser("rating", help="blinded visual-rating sheet (paper 3.8.4)")
    q.add_argument("--spec-json", type=json_object, required=True, help="{subject: {set name: {seq: path}}}")
    q.add_argument("--images", required=True, type=Path, help="directory for the coded images")
    q.add_argument("--sheet", required=True, type=Path, help="the raters' CSV (no method names)")
    q.add_argument("--key", required=True, type=Path, help="the code key CSV (keep it from the raters)")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=cmd_rating)
    q = rep_sub.add_parser("benchmarks", help="per-rule wall time and peak memory from benchmark files (job sizing)")
    q.add_argument("--benchmarks", default=Path("logs/benchmarks"), type=Path, help="the workflow's benchmark dir")
    q.add_argument("--out", required=True, type=Path, help="TSV table")
    q.add_argument("--margin", type=float, default=1.5, help="safety factor of the suggested runtime and mem_mb")
    q.add_argument("--out-stages", type=Path, help="TSV: CPU minutes by stage against the default run's budget")
    q.set_defaults(func=cmd_benchmarks)
