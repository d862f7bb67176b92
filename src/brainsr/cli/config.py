"""``brainsr validate-config``: config files checked against the schema, printed with the defaults filled in."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``brainsr validate-config``."""
    q = sub.add_parser("validate-config", help="validate config files and print them with defaults filled in")
    q.add_argument("configfile", nargs="+", type=Path)
    q.set_defaults(func=cmd_validate_config)
