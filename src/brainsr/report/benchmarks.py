"""Job sizing from Snakemake ``benchmark:`` files (issue 6: SLURM runtimes and memory per rule).

Every heavy rule writes ``logs/benchmarks/<rule>/<wildcards>.tsv`` (Snakemake's columns: ``s`` wall seconds,
``max_rss`` peak resident MB, ``cpu_time`` seconds, ...). :func:`benchmark_table` gathers them into one row per
rule with the job count, wall-time and peak-memory summaries and a suggested ``runtime`` (minutes) and ``mem_mb``:
the largest observed value times a safety ``margin``, rounded up (runtime at least 1 minute).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

__all__ = ["benchmark_table", "read_benchmarks"]

_COLUMNS = ("s", "max_rss", "cpu_time")


def read_benchmarks(root: str | Path) -> pd.DataFrame:
    """One row per benchmark file under ``root`` (``<rule>/<job>.tsv``): rule, job, s, max_rss, cpu_time.

    A file with several rows (``benchmark: repeat(...)``) counts once, by its mean. Raises ValueError naming the
    file when a file lacks the columns, and when ``root`` holds no benchmark file at all.
    """
    root = Path(root)
    rows = []
    for path in sorted(root.glob("*/*.tsv")):
        frame = pd.read_csv(path, sep="\t", na_values=["-", "NA"])
        missing = [c for c in _COLUMNS if c not in frame.columns]
        if missing or frame.empty:
            raise ValueError(f"{path}: not a Snakemake benchmark file (missing {missing or 'rows'})")
        row = {"rule": path.parent.name, "job": path.stem}
        row.update({c: float(pd.to_numeric(frame[c], errors="coerce").mean()) for c in _COLUMNS})
        rows.append(row)
    if not rows:
        raise ValueError(f"{root}: no benchmark files (<rule>/<job>.tsv) found")
    return pd.DataFrame(rows)


def benchmark_table(root: str | Path, margin: float = 1.5) -> pd.DataFrame:
    """Per rule: jobs, median/max wall seconds, max peak MB, total CPU hours, suggested runtime and mem_mb."""
    if margin < 1:
        raise ValueError(f"margin must be >= 1, got {margin}")
    frame = read_benchmarks(root)
    out = frame.groupby("rule").agg(
        jobs=("job", "size"),
        median_s=("s", "median"),
        max_s=("s", "max"),
        max_rss_mb=("max_rss", "max"),
        cpu_hours=("cpu_time", lambda v: v.sum() / 3600.0),
    )
    out["suggested_runtime_min"] = [max(1, math.ceil(s * margin / 60.0)) for s in out["max_s"]]
    out["suggested_mem_mb"] = [math.ceil(m * margin) if m == m else pd.NA for m in out["max_rss_mb"]]
    return out.reset_index().sort_values("max_s", ascending=False, ignore_index=True)
