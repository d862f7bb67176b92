"""The ``brainsr`` command line: one subcommand per workflow step (the Snakemake rules call these).

The parser modules (one per command group, :mod:`brainsr.cli.args` their argument types) import only the standard
library and brainsr's dependency-free constants; each command imports the library function it runs when it runs,
so that building the parser, which every workflow job does, stays cheap (no numpy, pandas, nibabel, torch, ANTs).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence

from brainsr import __version__
from brainsr.cli import config, evaluate, inventory, preprocess, report, segment, simulate, superres
from brainsr.usage import RESOURCES_TAG, resources_used

__all__ = ["build_parser", "main"]

log = logging.getLogger("brainsr")

#: The command groups in the order of ``brainsr --help``.
_GROUPS = (simulate, inventory, preprocess, superres, evaluate, segment, report, config)


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the ``brainsr`` command."""
    p = argparse.ArgumentParser(
        prog="brainsr",
        description="Deep attention super-resolution of clinical brain MRI (Li et al. 2022): workflow steps.",
    )
    p.add_argument("--version", action="version", version=f"brainsr {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in _GROUPS:
        group.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``brainsr`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from brainsr.base.memory import reuse_freed_memory  # standard library only

    start = time.perf_counter()
    try:
        with reuse_freed_memory():
            code = int(args.func(args) or 0)
    except (ValueError, RuntimeError, OSError) as exc:
        log.error("%s", exc)
        return 1
    log.info("%s %s", RESOURCES_TAG, json.dumps(resources_used(start)))
    return code
