"""Shared test helpers: the tiny preset's simulation settings, a one-patient synthetic cohort, Snakemake runs and
the finished tiny-preset run that the end-to-end, SLURM and resume tests share."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from brainsr.simulate.cohort import load_protocols, simulate_subject, write_dataset_files

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "workflow" / "presets" / "tiny.yaml"
PROTOCOLS = load_protocols(REPO / "resources" / "protocols.yaml")
SEQUENCES = ("T1w", "T2w", "FLAIR")
SESSIONS = {"clinical": "clinical", "research": "research", "longitudinal_prefix": "month"}
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).with_name("snakemake"))


def workflow_env(tmpdir: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a Snakemake subprocess: this interpreter's bin first on PATH, an optional TMPDIR."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **extra}
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return env


def snakemake(
    *args: str,
    cwd: Path,
    tmpdir: Path | None = None,
    timeout: float = 1800,
    env: dict[str, str] | None = None,
    program: tuple[str, ...] = (SNAKEMAKE,),
) -> subprocess.CompletedProcess:
    """Run the repository's workflow in *cwd* (``--directory``) with *program* and capture its output."""
    return subprocess.run(
        [*program, "-s", str(REPO / "Snakefile"), "--directory", str(cwd), *args],
        capture_output=True,
        text=True,
        env=env or workflow_env(tmpdir),
        timeout=timeout,
    )


def job_stats(text: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake dry run as {rule: count} ({} when there is nothing to do)."""
    if "Job stats:" not in text:
        return {}
    lines = text.split("Job stats:")[1].splitlines()
    stats = {}
    for line in lines[3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        stats[parts[0]] = int(parts[1])
    return stats


@pytest.fixture(scope="session", autouse=True)
def precision_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The measured-precision cache (brainsr.train.precision) of this test session, not the user's ~/.cache."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["BRAINSR_CACHE_DIR"] = str(path)
    return path


@dataclass(frozen=True)
class TinyRun:
    """A finished run of the tiny preset: its working directory and Snakemake's output."""

    workdir: Path
    result: subprocess.CompletedProcess

    def copy(self, target: Path, drop: tuple[str, ...] = ()) -> Path:
        """Copy the run (results, logs, .snakemake metadata; file times kept) without the *drop* paths, its temporary
        files, its report and hand-edited masks (the end-to-end test adds one for a moment)."""
        edits = "results/sourcedata/synthetic/derivatives/masks"
        skip = {(self.workdir / d).resolve() for d in (*drop, "tmp", "report.html", edits)}
        shutil.copytree(
            self.workdir,
            target,
            symlinks=True,
            ignore=lambda d, names: [n for n in names if (Path(d) / n).resolve() in skip],
        )
        (target / "tmp").mkdir(exist_ok=True)
        return target


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """The whole workflow on the tiny preset, run once per session (tests that change it work on a copy)."""
    # BRAINSR_TINY_RUN (development): a finished tiny run to bring up to date and reuse instead of a fresh one
    reuse = os.environ.get("BRAINSR_TINY_RUN")
    work = Path(reuse) if reuse else tmp_path_factory.mktemp("tiny")
    (work / "tmp").mkdir(exist_ok=True)
    out = snakemake("--cores", "2", "--configfile", str(TINY), cwd=work, tmpdir=work / "tmp", timeout=3000)
    return TinyRun(work, out)


def small_model_file(
    path: Path, sequences: list[str] | tuple[str, ...] = ("T1w", "T2w", "FLAIR"), **data: object
) -> Path:
    """An untrained 4-filter, depth-2 attention U-Net model file taking ``sequences`` (``data`` adds to its record)."""
    from brainsr.models import AttentionUNet
    from brainsr.models.files import save_model_file

    kwargs = {"in_channels": len(sequences), "out_channels": len(sequences), "filters": 4, "depth": 2}
    record = {"prep": "affinelinear", "sequences": list(sequences), "experiment": "model0", "axis": "axial", "pad": 16}
    return save_model_file(
        path, generator=AttentionUNet(**kwargs), model_name="attention_unet", model_kwargs=kwargs, data=record | data
    )


def tiny_sim(**over: object) -> dict:
    """The tiny preset's simulate section merged over config.yaml, with overrides."""
    sim = yaml.safe_load((REPO / "config.yaml").read_text())["simulate"]
    sim.update(yaml.safe_load(TINY.read_text())["simulate"])
    sim.update(over)
    return sim


def make_cohort(root: Path, protocol: str) -> Path:
    """A BIDS dataset with one patient (sub-P001) acquired with ``protocol``, at 2 mm."""
    sim = tiny_sim(n_patients=1, n_controls=0, split_counts={"train": 1}, protocol_weights={protocol: 1})
    write_dataset_files(sim, root, PROTOCOLS)
    simulate_subject(sim, "P001", protocol, root, SESSIONS, PROTOCOLS)
    return root


@pytest.fixture(scope="session")
def p1_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One protocol-1 patient, shared read-only by the tests that need a generated dataset (copy to modify)."""
    return make_cohort(tmp_path_factory.mktemp("p1_cohort"), "P1")
