"""What a run was, for the HTML report's landing page (workflow/report/workflow.rst): its configuration files, the
workflow's source commit, the cohort and the evaluated subjects."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from brainsr import __version__

SPLIT_ORDER = ("train", "validation", "test")
NO_GIT = "unknown (not a git checkout)"


def _git(directory: str | Path, *args: str) -> str:
    """stdout of ``git -C directory args`` (raises OSError or SubprocessError when git or the checkout is missing)."""
    out = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.strip()


def source_commit(directory: str | Path) -> str:
    """The commit checked out where *directory* lies (12-digit hash, "with uncommitted changes" when tracked files
    differ from it), or NO_GIT outside a git checkout or without git."""
    try:
        head = _git(directory, "rev-parse", "--short=12", "HEAD")
        changed = _git(directory, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return NO_GIT
    return f"{head} with uncommitted changes" if changed else head


def split_counts(splits: Mapping[str, str | None]) -> str:
    """'1 train, 1 validation, 1 test' from {subject: split} (train, validation, test first; None = unassigned)."""
    counts = Counter(s or "unassigned" for s in splits.values())
    order = [s for s in SPLIT_ORDER if s in counts] + sorted(set(counts) - set(SPLIT_ORDER))
    return ", ".join(f"{counts[s]} {s}" for s in order)


def run_facts(
    config_files: Iterable[str | Path],
    overrides: Mapping[str, Any],
    source_dir: str | Path,
    splits: Mapping[str, str | None],
    controls: Iterable[str],
    evaluated: Iterable[str],
    showcase: tuple[str, str] | None,
) -> dict[str, Any]:
    """The facts the landing page states, as plain values for its Jinja template.

    config_files: in the order they were merged (shown absolute); overrides: the --config values; source_dir: the
    workflow's directory; splits: {patient: split}; controls: the longitudinal subjects; evaluated: the evaluated
    patients; showcase: (subject, method) of Figs. 5-12, None without one."""
    return {
        "config_files": [str(Path(f).absolute()) for f in config_files],
        "overrides": [f"{key}={json.dumps(value, sort_keys=True)}" for key, value in sorted(overrides.items())],
        "version": __version__,
        "commit": source_commit(source_dir),
        "patients": len(splits),
        "splits": split_counts(splits),
        "controls": len(list(controls)),
        "evaluated": list(evaluated),
        "showcase": list(showcase) if showcase else None,
    }
