"""The workflow on a real SLURM cluster: a single-node cluster on 127.0.0.1 (scripts/slurm/cluster.sh) with a `cpu`
and a `gpu` partition and one fake GPU, driven through ``--profile profiles/slurm`` (issue 6) by the Snakemake of
the test environment itself, which holds the executor plugin through the ``slurm`` extra (issue 21: one environment).

The tiny preset's finished local run (the session fixture ``tiny_run``) is copied; on the copy the training of
``model0`` is forced, so SLURM runs the training (gpu partition), the upsampling of one test subject (gpu
partition) and the evaluation of that scan set, image metrics included (cpu partition). The outputs must equal the
local run's, and accounting must show the three jobs, on their partitions, completed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import REPO, TINY, TinyRun, snakemake, workflow_env

SCRIPTS = REPO / "scripts" / "slurm"
PROFILE = REPO / "profiles" / "slurm"
ANAT = "results/superres/sub-P001/ses-clinical/anat"
UPSAMPLED = [f"{ANAT}/sub-P001_ses-clinical_space-MNI152NLin2009cSym_desc-model0_{q}.nii.gz" for q in ("T1w", "FLAIR")]
METRICS = (
    "results/evaluate/sub-P001/ses-clinical/anat/sub-P001_ses-clinical_space-MNI152NLin2009cSym_desc-model0_"
    "imagemetrics.json"
)
HISTORY = "results/superres/models/model0/history.tsv"
EXPECTED = {"superres_train": "gpu", "superres_infer": "gpu", "evaluate_clinical": "cpu"}


@dataclass(frozen=True)
class Slurm:
    """The running test cluster: environment variables for its commands."""

    env: dict[str, str]


def why_not() -> str | None:
    """Why the SLURM test cannot run on this machine (None: it can). A missing plugin is no reason: the `test`
    extra installs the `slurm` extra, so the fixture fails on it."""
    if os.environ.get("BRAINSR_SKIP_SLURM"):
        return "BRAINSR_SKIP_SLURM is set"
    if shutil.which("slurmctld") is None and (os.geteuid() != 0 or shutil.which("apt-get") is None):
        return "SLURM is not installed, and installing it needs root and apt-get (scripts/slurm/cluster.sh install)"
    return None


def _script(name: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slurm]:
    """Install (what is missing) and start the test cluster; Snakemake runs from this environment."""
    reason = why_not()
    if reason:
        pytest.skip(reason)
    installed = _script("cluster.sh", "install", timeout=900)  # apt-get only what is missing
    if installed.returncode != 0:
        pytest.skip(f"cannot install SLURM here: {installed.stderr[-1500:]}")
    assert importlib.util.find_spec("snakemake_executor_plugin_slurm"), (
        "the SLURM executor plugin is missing from the test environment: pip install -e '.[test]' (or '.[slurm]')"
    )
    state = tmp_path_factory.mktemp("slurm")
    started = _script("cluster.sh", "start", str(state), timeout=300)
    try:
        assert started.returncode == 0, f"the test cluster did not start:\n{started.stderr[-4000:]}"
        conf = started.stdout.strip().splitlines()[-1].removeprefix("export SLURM_CONF=")
        yield Slurm({"SLURM_CONF": conf})
    finally:
        _script("cluster.sh", "stop", str(state), timeout=120)


def slurm_jobs(log: str, env: dict[str, str]) -> pd.DataFrame:
    """The workflow's SLURM jobs from accounting: job id, rule (from the plugin's job comment), partition, state."""
    out = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-S", "now-2hours", "-o", "JobID,Partition,State,Elapsed,AllocTRES,Comment"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    rows = [line.split("|", 5) for line in out.stdout.splitlines() if line.strip()]
    jobs = pd.DataFrame(rows, columns=["job_id", "partition", "state", "elapsed", "tres", "comment"])
    # the plugin deletes the logs of successful jobs: the job ids come from Snakemake's own output
    submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", log))
    jobs = jobs[jobs.job_id.isin(submitted)].copy()
    jobs["rule"] = jobs.comment.str.extract(r"^rule_(.+?)(?:_wildcards_|$)", expand=False)
    jobs["gpus"] = jobs.tres.str.extract(r"gres/gpu=(\d+)", expand=False).fillna("0").astype(int)
    return jobs[["rule", "job_id", "partition", "state", "elapsed", "gpus", "comment"]]


@pytest.mark.e2e
def test_tiny_preset_on_slurm_gpu_training_cpu_evaluation(slurm: Slurm, tiny_run: TinyRun, tmp_path: Path) -> None:
    assert tiny_run.result.returncode == 0, "the local tiny run failed (see test_tiny_preset_end_to_end)"
    work = tiny_run.copy(tmp_path / "work", drop=("logs", "results/superres/models/model0/work"))
    env = workflow_env(work / "tmp", **slurm.env)
    targets = [*UPSAMPLED, METRICS]
    run = snakemake(
        "--profile",
        str(PROFILE),
        "--configfile",
        str(TINY),
        "--forcerun",
        "superres_train",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--latency-wait",
        "5",
        *targets,
        cwd=work,
        env=env,
        timeout=1200,
        program=(sys.executable, "-m", "snakemake"),
    )
    log = run.stdout[-4000:] + run.stderr[-4000:]
    assert run.returncode == 0, log
    jobs = slurm_jobs(run.stdout + run.stderr, env)
    (tmp_path / "slurm_jobs.tsv").write_text(jobs.to_csv(sep="\t", index=False))
    print(jobs.to_string(index=False))
    assert sorted(jobs.rule) == sorted(EXPECTED), jobs
    assert (jobs.state == "COMPLETED").all(), jobs
    assert dict(zip(jobs.rule, jobs.partition, strict=True)) == EXPECTED, jobs
    assert jobs.set_index("rule").at["superres_train", "gpus"] == 1, jobs  # the GPU was requested and granted

    # the same numbers as the local run
    local = tiny_run.workdir
    timing = ["seconds", "samples_per_s"]
    ours, theirs = (pd.read_csv(d / HISTORY, sep="\t").drop(columns=timing) for d in (work, local))
    assert list(ours.epoch) == list(theirs.epoch) == [1, 2]
    np.testing.assert_allclose(ours.to_numpy(float), theirs.to_numpy(float), rtol=1e-5, atol=1e-7)
    for path in UPSAMPLED:
        a = np.asarray(nib.load(work / path).dataobj)
        b = np.asarray(nib.load(local / path).dataobj)
        np.testing.assert_allclose(a, b, atol=1e-5, err_msg=path)
    ours_m, theirs_m = (json.loads((d / METRICS).read_text()) for d in (work, local))
    assert _numbers(ours_m) == pytest.approx(_numbers(theirs_m), rel=1e-5, abs=1e-7)


def _numbers(tree: object, prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a JSON document, by their key path."""
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _numbers(sub, f"{prefix}/{key}").items()}
    if isinstance(tree, list):
        return {k: v for i, sub in enumerate(tree) for k, v in _numbers(sub, f"{prefix}/{i}").items()}
    if isinstance(tree, int | float) and not isinstance(tree, bool):
        return {prefix: float(tree)}
    return {}
