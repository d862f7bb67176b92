"""``brainsr inventory``: the subjects, sessions and sequences of a BIDS dataset, with any problems."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from brainsr.cli.args import json_object

log = logging.getLogger("brainsr")


def cmd_inventory(args: argparse.Namespace) -> int:
    """Table of the subjects, sessions and sequences found in a BIDS dataset, with any problems."""
    from brainsr.bids import discover_configured
    from brainsr.config import deep_merge, validate_config
    from brainsr.io import atomic_write_tsv

    cfg = validate_config(deep_merge(validate_config({}), args.config_json or {}))
    inv = discover_configured(args.bids_dir, cfg)
    atomic_write_tsv(inv.to_dataframe(), args.out)
    for problem in inv.problems:
        log.warning("%s", problem)
    log.info(
        "%d paired subjects, %d longitudinal subjects, %d problems",
        len(inv.pairs),
        len(inv.longitudinal),
        len(inv.problems),
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``brainsr inventory``."""
    q = sub.add_parser("inventory", help="list subjects/sessions/sequences of a BIDS dataset and problems")
    q.add_argument("--bids-dir", required=True, type=Path)
    q.add_argument(
        "--config-json",
        type=json_object,
        help="config sections (sessions, sequences, bids_filters, split) as JSON; defaults from the schema",
    )
    q.add_argument("--out", required=True, type=Path, help="output TSV")
    q.set_defaults(func=cmd_inventory)
