"""Tests of brainsr.report.benchmarks: the per-rule sizing table from Snakemake benchmark files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from brainsr.report.benchmarks import benchmark_table

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _bench(root: Path, rule: str, job: str, s: float, rss: float, cpu: float) -> None:
    (root / rule).mkdir(parents=True, exist_ok=True)
    (root / rule / f"{job}.tsv").write_text(HEADER + f"{s}\t0:00:00\t{rss}\t1\t1\t1\t0\t0\t100\t{cpu}\n")


def test_benchmark_table_by_hand(tmp_path):
    _bench(tmp_path, "train", "experiment-a", 100.0, 500.0, 1800.0)
    _bench(tmp_path, "train", "experiment-b", 300.0, 700.0, 1800.0)
    _bench(tmp_path, "qc", "subject-1", 2.0, 10.4, 1.0)
    table = benchmark_table(tmp_path, margin=1.5).set_index("rule")
    assert list(table.index) == ["train", "qc"]  # longest first
    train = table.loc["train"]
    assert train.jobs == 2 and train.median_s == 200.0 and train.max_s == 300.0 and train.max_rss_mb == 700.0
    assert train.cpu_hours == pytest.approx(1.0)  # 3600 CPU seconds
    assert train.suggested_runtime_min == 8  # ceil(300 * 1.5 / 60) = ceil(7.5)
    assert train.suggested_mem_mb == 1050  # 700 * 1.5
    assert table.loc["qc", "suggested_runtime_min"] == 1 and table.loc["qc", "suggested_mem_mb"] == 16  # ceil(15.6)


def test_benchmark_table_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="no benchmark files"):
        benchmark_table(tmp_path)
    (tmp_path / "rule").mkdir()
    (tmp_path / "rule" / "bad.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match=r"bad\.tsv: not a Snakemake benchmark file"):
        benchmark_table(tmp_path)
    with pytest.raises(ValueError, match="margin"):
        benchmark_table(tmp_path, margin=0.5)


def test_report_benchmarks_cli_writes_the_table(tmp_path):
    _bench(tmp_path / "bench", "infer", "subject-P001", 30.0, 400.0, 50.0)
    out = tmp_path / "sizing.tsv"
    args = ["report", "benchmarks", "--benchmarks", str(tmp_path / "bench"), "--out", str(out)]
    done = subprocess.run([str(Path(sys.executable).parent / "brainsr"), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out, sep="\t")
    assert table.loc[0, "rule"] == "infer" and table.loc[0, "suggested_runtime_min"] == 1
