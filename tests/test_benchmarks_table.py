"""Tests of brainsr.report.benchmarks: the per-rule sizing table from Snakemake benchmark files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from brainsr.report.benchmarks import benchmark_table, logged_cpu, read_benchmarks, stage_of, stage_table

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
    assert 'resources used: {"cpu_s": ' in done.stderr  # every command logs its own CPU time at the end
    table = pd.read_csv(out, sep="\t")
    assert table.loc[0, "rule"] == "infer" and table.loc[0, "suggested_runtime_min"] == 1


def test_stage_table_sums_cpu_minutes_against_the_budget(tmp_path):
    _bench(tmp_path, "simulate_patient", "subject-P001", 70.0, 100.0, 120.0)
    _bench(tmp_path, "cohort_qc", "cohort_qc", 10.0, 100.0, 60.0)
    _bench(tmp_path, "preprocess_resample", "a", 50.0, 100.0, 3000.0)
    _bench(tmp_path, "preprocess_prepare", "a", 90.0, 100.0, 1800.0)
    _bench(tmp_path, "superres_train", "model0", 600.0, 100.0, 4800.0)
    _bench(tmp_path, "superres_infer", "a", 6.0, 100.0, 30.0)
    _bench(tmp_path, "evaluate_clinical", "a", 6.0, 100.0, 30.0)
    table = stage_table(tmp_path, budget={"simulation": 2, "preprocessing": 70, "training": 60}).set_index("stage")
    assert list(table.index) == ["simulation", "preprocessing", "training", "inference, evaluation, report", "total"]
    sim = table.loc["simulation"]
    assert (sim.rules, sim.jobs, sim.cpu_min, sim.job_wall_min) == (2, 2, 3.0, 1.33)  # 180 CPU s, 80 wall s
    assert sim.budget_cpu_min == 2 and not sim.within_budget
    assert table.loc["preprocessing", "cpu_min"] == 80.0 and not table.loc["preprocessing", "within_budget"]
    assert table.loc["training", "cpu_min"] == 80.0 and table.loc["training", "job_wall_min"] == 10.0
    assert (
        table.loc["inference, evaluation, report", "jobs"] == 2
        and table.loc["inference, evaluation, report", "cpu_min"] == 1.0
    )
    assert table.loc["total", "jobs"] == 7 and table.loc["total", "cpu_min"] == 164.0
    assert table.loc["total", "budget_cpu_min"] == 132
    assert stage_of("bids_inventory") == "simulation" and stage_of("all") == "other"


def test_report_benchmarks_cli_writes_the_stage_table(tmp_path):
    _bench(tmp_path / "bench", "preprocess_warp", "a", 30.0, 400.0, 600.0)
    out, stages = tmp_path / "sizing.tsv", tmp_path / "stages.tsv"
    args = [
        "report",
        "benchmarks",
        "--benchmarks",
        str(tmp_path / "bench"),
        "--out",
        str(out),
        "--out-stages",
        str(stages),
    ]
    done = subprocess.run([str(Path(sys.executable).parent / "brainsr"), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(stages, sep="\t")
    assert table["stage"].tolist() == ["preprocessing", "total"] and table.loc[0, "cpu_min"] == 10.0
    assert table.loc[0, "budget_cpu_min"] == 70.0 and bool(table.loc[0, "within_budget"])


def test_cpu_time_comes_from_the_jobs_log_when_it_has_one(tmp_path):
    """Snakemake samples CPU every few seconds and misses a job's end; the command's own rusage line wins."""
    bench = tmp_path / "logs" / "benchmarks"
    _bench(bench, "preprocess_evaluated", "subject-P001_session-clinical", 50.0, 100.0, 3.0)
    _bench(bench, "preprocess_evaluated", "subject-P001_session-research", 50.0, 100.0, 4.0)
    log = tmp_path / "logs" / "preprocess_evaluated" / "subject-P001_session-clinical.log"
    log.parent.mkdir(parents=True)
    log.write_text(
        'INFO brainsr: resources used: {"cpu_s": 1.0, "wall_s": 1, "max_rss_mb": 1}\n'
        'INFO brainsr: resources used: {"cpu_s": 41.5, "wall_s": 49.0, "max_rss_mb": 99}\n'  # the last one counts
    )
    frame = read_benchmarks(bench).set_index("job")
    assert frame.loc["subject-P001_session-clinical", "cpu_time"] == 41.5
    assert frame.loc["subject-P001_session-clinical", "cpu_source"] == "log"
    assert frame.loc["subject-P001_session-research", "cpu_time"] == 4.0  # no log: Snakemake's value
    assert frame.loc["subject-P001_session-research", "cpu_source"] == "snakemake"
    assert logged_cpu(tmp_path / "missing.log") is None


def test_resources_used_counts_this_process():
    import time

    from brainsr.usage import resources_used

    start = time.perf_counter()
    before = resources_used(start)["cpu_s"]
    sum(i * i for i in range(2_000_000))  # some CPU work
    after = resources_used(start)
    assert after["cpu_s"] > before and after["wall_s"] > 0 and after["max_rss_mb"] > 1
