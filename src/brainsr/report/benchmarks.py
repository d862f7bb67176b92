"""Job sizing from Snakemake ``benchmark:`` files (issue 6: SLURM runtimes and memory per rule).

Every heavy rule writes ``logs/benchmarks/<rule>/<wildcards>.tsv`` (Snakemake's columns: ``s`` wall seconds,
``max_rss`` peak resident MB, ``cpu_time`` seconds, ...). :func:`benchmark_table` gathers them into one row per
rule with the job count, wall-time and peak-memory summaries and a suggested ``runtime`` (minutes) and ``mem_mb``:
the largest observed value times a safety ``margin``, rounded up (runtime at least 1 minute).
:func:`stage_table` sums the CPU time by workflow stage against a CPU-minute budget (issue 19: the default run
in 2 cores x 90 minutes = 180 CPU-minutes, of which about 10 go to job start-up and scheduling).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

__all__ = ["BUDGET_CPU_MIN", "benchmark_table", "logged_cpu", "read_benchmarks", "stage_of", "stage_table"]

_COLUMNS = ("s", "max_rss", "cpu_time")
#: Workflow stages by rule-name prefix, in DAG order, with the default run's CPU-minute budget (issue 19).
_STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("simulation", ("simulate_", "cohort_qc", "bids_inventory")),
    ("preprocessing", ("preprocess_",)),
    ("training", ("superres_train",)),
    ("inference, evaluation, report", ("superres_", "evaluate_", "report_")),
)
BUDGET_CPU_MIN: dict[str, float] = {
    "simulation": 10.0,
    "preprocessing": 70.0,
    "training": 60.0,
    "inference, evaluation, report": 30.0,
}


def logged_cpu(log: Path) -> float | None:
    """CPU seconds a ``brainsr`` command logged at its end (:data:`brainsr.usage.RESOURCES_TAG`), if it did."""
    from brainsr.usage import RESOURCES_TAG

    if not log.is_file():
        return None
    lines = [line for line in log.read_text(errors="replace").splitlines() if RESOURCES_TAG in line]
    if not lines:
        return None
    return float(json.loads(lines[-1].split(RESOURCES_TAG, 1)[1])["cpu_s"])


def read_benchmarks(root: str | Path) -> pd.DataFrame:
    """One row per benchmark file under ``root`` (``<rule>/<job>.tsv``): rule, job, s, max_rss, cpu_time,
    cpu_source.

    ``cpu_time`` is the CPU time the job's ``brainsr`` command logged (``logs/<rule>/<job>.log``, beside
    ``root`` = ``logs/benchmarks``; ``cpu_source`` ``log``) where there is one, else Snakemake's sampled value
    (``snakemake``), which misses the CPU of a job's last seconds. A file with several rows (``benchmark:
    repeat(...)``) counts once, by its mean. Raises ValueError naming the file when a file lacks the columns, and
    when ``root`` holds no benchmark file at all.
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
        cpu = logged_cpu(root.parent / path.parent.name / f"{path.stem}.log")
        row.update({"cpu_time": cpu, "cpu_source": "log"} if cpu is not None else {"cpu_source": "snakemake"})
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


def stage_of(rule: str) -> str:
    """The workflow stage of a rule (first matching prefix of :data:`_STAGES`), else ``other``."""
    return next((stage for stage, prefixes in _STAGES if rule.startswith(prefixes)), "other")


def stage_table(root: str | Path, budget: dict[str, float] | None = None) -> pd.DataFrame:
    """Per stage: rules, jobs, CPU minutes (sum of ``cpu_time``), summed job wall minutes, budget, within budget.

    A last row ``total`` sums every stage; its budget is the sum of the stages' budgets.
    """
    budget = BUDGET_CPU_MIN if budget is None else budget
    frame = read_benchmarks(root)
    frame["stage"] = frame["rule"].map(stage_of)
    order = [stage for stage, _ in _STAGES] + ["other"]
    out = (
        frame.groupby("stage")
        .agg(rules=("rule", "nunique"), jobs=("job", "size"), cpu_min=("cpu_time", "sum"), job_wall_min=("s", "sum"))
        .reindex([s for s in order if s in set(frame["stage"])])
    )
    out[["cpu_min", "job_wall_min"]] /= 60.0
    out.loc["total"] = [frame["rule"].nunique(), len(frame), out["cpu_min"].sum(), out["job_wall_min"].sum()]
    out["budget_cpu_min"] = [budget.get(s, float("nan")) for s in out.index[:-1]] + [sum(budget.values())]
    out["within_budget"] = out["cpu_min"] <= out["budget_cpu_min"]
    return out.astype({"rules": int, "jobs": int}).round(2).reset_index()
