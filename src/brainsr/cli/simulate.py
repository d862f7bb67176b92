"""``brainsr simulate subject|dataset`` and ``brainsr cohort-qc``: the synthetic paired cohort (BIDS)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from brainsr.cli.args import json_object

log = logging.getLogger("brainsr")


def _simulate_settings(args: argparse.Namespace) -> tuple[dict, dict, dict]:
    """Merge the validated default config with the --simulate-json / --sessions-json overrides."""
    from brainsr.config import deep_merge, validate_config
    from brainsr.simulate.cohort import load_protocols

    cfg = validate_config({})
    sim = deep_merge(cfg["simulate"], args.simulate_json or {})
    sessions = deep_merge(cfg["sessions"], args.sessions_json or {})
    protocols = load_protocols(args.protocols or sim["protocols_file"])
    return sim, sessions, protocols


def cmd_simulate_subject(args: argparse.Namespace) -> int:
    """Generate one subject of the synthetic cohort."""
    from brainsr.simulate.cohort import simulate_subject

    sim, sessions, protocols = _simulate_settings(args)
    if args.subject.startswith("P") and not args.protocol:
        raise SystemExit(f"brainsr simulate subject: patient {args.subject} needs --protocol")
    t0 = time.perf_counter()
    written = simulate_subject(sim, args.subject, args.protocol, args.bids_dir, sessions, protocols)
    log.info("sub-%s: %d files in %.1f s", args.subject, len(written), time.perf_counter() - t0)
    return 0


def cmd_simulate_dataset(args: argparse.Namespace) -> int:
    """Write the cohort-level BIDS files (dataset_description, participants.tsv, ground-truth lookup)."""
    from brainsr.simulate.cohort import write_dataset_files

    sim, _, protocols = _simulate_settings(args)
    for path in write_dataset_files(sim, args.bids_dir, protocols):
        log.info("wrote %s", path)
    return 0


def cmd_cohort_qc(args: argparse.Namespace) -> int:
    """Cohort QC figure (clinical vs research per protocol) and image-quality (realism) tables."""
    from brainsr.simulate.qc import write_cohort_qc

    write_cohort_qc(args.bids_dir, args.figure, args.table, args.summary)
    return 0


def _add_common(q: argparse.ArgumentParser) -> None:
    q.add_argument("--bids-dir", required=True, type=Path, help="root of the BIDS dataset to write")
    q.add_argument("--simulate-json", type=json_object, help="the config's 'simulate' section as JSON")
    q.add_argument("--sessions-json", type=json_object, help="the config's 'sessions' section as JSON")
    q.add_argument("--protocols", type=Path, help="protocol file (default: simulate.protocols_file)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``brainsr simulate subject|dataset`` and ``brainsr cohort-qc``."""
    sim = sub.add_parser("simulate", help="generate the synthetic paired cohort (BIDS)")
    sim_sub = sim.add_subparsers(dest="what", required=True, metavar="WHAT")
    q = sim_sub.add_parser("subject", help="one subject's images, sidecars and ground truth")
    _add_common(q)
    q.add_argument("--subject", required=True, help="subject label, e.g. P001 (patient) or C001 (control)")
    q.add_argument("--protocol", help="clinical protocol of a patient (e.g. P2)")
    q.set_defaults(func=cmd_simulate_subject)
    q = sim_sub.add_parser("dataset", help="dataset_description.json, participants.tsv and lookup tables")
    _add_common(q)
    q.set_defaults(func=cmd_simulate_dataset)

    q = sub.add_parser("cohort-qc", help="cohort QC figure and image-quality tables of a synthetic cohort")
    q.add_argument("--bids-dir", required=True, type=Path)
    q.add_argument("--figure", required=True, type=Path, help="output PNG")
    q.add_argument("--table", required=True, type=Path, help="output TSV, one row per image")
    q.add_argument("--summary", required=True, type=Path, help="output TSV, mean and SD per protocol/sequence")
    q.set_defaults(func=cmd_cohort_qc)
