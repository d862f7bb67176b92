"""The ``brainsr`` command line: one subcommand per workflow step (the Snakemake rules call these)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("brainsr")


def _json_arg(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


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


def cmd_inventory(args: argparse.Namespace) -> int:
    """Table of the subjects, sessions and sequences found in a BIDS dataset, with any problems."""
    from brainsr.bids import discover
    from brainsr.config import deep_merge, validate_config
    from brainsr.io import atomic_write_tsv

    cfg = validate_config(deep_merge(validate_config({}), args.config_json or {}))
    kw = {
        "clinical": cfg["sessions"]["clinical"],
        "research": cfg["sessions"]["research"],
        "longitudinal_prefix": cfg["sessions"]["longitudinal_prefix"],
        "sequences": tuple(cfg["sequences"]),
        "filters": cfg["bids_filters"],
        "split_column": cfg["split"]["column"],
        "split_fractions": cfg["split"]["fractions"],
        "split_seed": cfg["split"]["seed"],
    }
    inv = discover(args.bids_dir, **kw)
    df = inv.to_dataframe()
    atomic_write_tsv(df, args.out)
    for problem in inv.problems:
        log.warning("%s", problem)
    log.info(
        "%d paired subjects, %d longitudinal subjects, %d problems",
        len(inv.pairs),
        len(inv.longitudinal),
        len(inv.problems),
    )
    return 0


def cmd_validate_config(args: argparse.Namespace) -> int:
    """Validate config files (merged in order) against the schema and print the result with defaults."""
    import yaml

    from brainsr.config import ConfigError, load_config

    try:
        cfg = load_config(*args.configfile)
    except ConfigError as exc:
        print(f"invalid configuration: {exc}", file=sys.stderr)
        return 2
    print(yaml.safe_dump(cfg, sort_keys=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the ``brainsr`` command."""
    from brainsr import __version__

    p = argparse.ArgumentParser(
        prog="brainsr",
        description="Deep attention super-resolution of clinical brain MRI (Li et al. 2022): workflow steps.",
    )
    p.add_argument("--version", action="version", version=f"brainsr {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sim = sub.add_parser("simulate", help="generate the synthetic paired cohort (BIDS)")
    sim_sub = sim.add_subparsers(dest="what", required=True, metavar="WHAT")

    def sim_common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--bids-dir", required=True, type=Path, help="root of the BIDS dataset to write")
        q.add_argument("--simulate-json", type=_json_arg, help="the config's 'simulate' section as JSON")
        q.add_argument("--sessions-json", type=_json_arg, help="the config's 'sessions' section as JSON")
        q.add_argument("--protocols", type=Path, help="protocol file (default: simulate.protocols_file)")

    q = sim_sub.add_parser("subject", help="one subject's images, sidecars and ground truth")
    sim_common(q)
    q.add_argument("--subject", required=True, help="subject label, e.g. P001 (patient) or C001 (control)")
    q.add_argument("--protocol", help="clinical protocol of a patient (e.g. P2)")
    q.set_defaults(func=cmd_simulate_subject)
    q = sim_sub.add_parser("dataset", help="dataset_description.json, participants.tsv and lookup tables")
    sim_common(q)
    q.set_defaults(func=cmd_simulate_dataset)

    q = sub.add_parser("cohort-qc", help="cohort QC figure and image-quality tables of a synthetic cohort")
    q.add_argument("--bids-dir", required=True, type=Path)
    q.add_argument("--figure", required=True, type=Path, help="output PNG")
    q.add_argument("--table", required=True, type=Path, help="output TSV, one row per image")
    q.add_argument("--summary", required=True, type=Path, help="output TSV, mean and SD per protocol/sequence")
    q.set_defaults(func=cmd_cohort_qc)

    q = sub.add_parser("inventory", help="list subjects/sessions/sequences of a BIDS dataset and problems")
    q.add_argument("--bids-dir", required=True, type=Path)
    q.add_argument(
        "--config-json",
        type=_json_arg,
        help="config sections (sessions, sequences, bids_filters, split) as JSON; defaults from the schema",
    )
    q.add_argument("--out", required=True, type=Path, help="output TSV")
    q.set_defaults(func=cmd_inventory)

    from brainsr.preprocess.commands import add_parser as add_preprocess

    add_preprocess(sub)

    from brainsr.superres_cli import add_parser as add_superres

    add_superres(sub)

    from brainsr.metrics.commands import add_parser as add_evaluate
    from brainsr.report.commands import add_parser as add_report
    from brainsr.segment.commands import add_parser as add_segment

    add_evaluate(sub)
    add_segment(sub)
    add_report(sub)

    q = sub.add_parser("validate-config", help="validate config files and print them with defaults filled in")
    q.add_argument("configfile", nargs="+", type=Path)
    q.set_defaults(func=cmd_validate_config)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``brainsr`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    start = time.perf_counter()
    try:
        code = int(args.func(args) or 0)
    except (ValueError, RuntimeError, OSError) as exc:
        log.error("%s", exc)
        return 1
    log.info("%s %s", RESOURCES_TAG, json.dumps(resources_used(start)))
    return code


#: Tag of the log line with the command's own CPU time (read back by ``brainsr report benchmarks``).
RESOURCES_TAG = "resources used:"


def resources_used(start: float) -> dict[str, float]:
    """CPU seconds (user + system, every thread and waited-for child), wall seconds since ``start``, peak RSS
    (MB) of this process: exact, where Snakemake's benchmark samples CPU every few seconds and misses the end."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    return {"cpu_s": round(cpu, 2), "wall_s": round(time.perf_counter() - start, 2), "max_rss_mb": me.ru_maxrss / 1024}


if __name__ == "__main__":
    sys.exit(main())
