"""Benchmark `brainsr simulate`: wall and CPU (user + system) time, peak memory and disk size of one subject per
protocol.

Usage: python benchmarks/simulate.py [--resolution 1] [--out benchmarks/simulate.tsv]
Writes a TSV table (one row per subject) and prints it. Not a test: targets are read by people.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]


def _cpu_seconds() -> float:
    """User + system CPU time of this process (the budget of a workflow run counts both)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _one(args: tuple[str, str | None, int, str]) -> dict:
    label, protocol, resolution, root = args
    from brainsr.simulate.cohort import load_protocols, simulate_subject

    sim = yaml.safe_load((REPO / "config.yaml").read_text())["simulate"]
    sim.update(
        template_resolution_mm=resolution,
        min_voxel_mm=0 if resolution == 1 else float(resolution),
        research_voxel_mm=float(resolution),
    )
    protocols = load_protocols(REPO / "resources" / "protocols.yaml")
    sessions = {"clinical": "clinical", "research": "research", "longitudinal_prefix": "month"}
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    files = simulate_subject(sim, label, protocol, root, sessions, protocols)
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    size = sum(Path(f).stat().st_size for f in files)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "subject": label,
        "protocol": protocol or "control",
        "resolution_mm": resolution,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "peak_rss_mb": round(peak),
        "size_mb": round(size / 2**20, 1),
        "files": len(files),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--resolution", type=int, default=1, choices=[1, 2])
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "simulate.tsv")
    a = p.parse_args()
    jobs = [(f"P{i + 1:03d}", f"P{i + 1}", a.resolution) for i in range(5)] + [("C001", None, a.resolution)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ctx = mp.get_context("spawn")  # one fresh process per subject: honest peak memory
        for job in jobs:
            with ctx.Pool(1) as pool:
                rows.append(pool.apply(_one, ((*job, tmp),)))
    df = pd.DataFrame(rows)
    df.to_csv(a.out, sep="\t", index=False)
    print(df.to_string(index=False))


if __name__ == "__main__":
    main()
