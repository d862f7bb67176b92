"""Benchmark: preprocess one subject (both sessions, three sequences, every alignment and variant).

Runs ``brainsr preprocess session``, the command the workflow's per-session rule runs, once per session in its own
process, with the default config's ``preprocess`` section, and writes a table of wall time, CPU time and peak
memory (RSS) per session, with the seconds of each step inside it (from the command's log) and the subject total::

    python benchmarks/preprocess.py --bids-dir results/sourcedata/synthetic --subject P001 --out bench.tsv

The workflow builds only the preps that a consumer reads; this benchmark builds all of them (an evaluated
subject's set). ``cpu_s`` well below 2 CPU-seconds per second leaves a core free for a second Snakemake job.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from brainsr import TEMPLATE_SPACE
from brainsr.config import validate_config
from brainsr.preprocess.chain import SETTING_KEYS
from brainsr.preprocess.pipeline import prep_label

SEQS = ("T1w", "T2w", "FLAIR")


def _run(cmd: list[str]) -> tuple[float, float, float, str]:
    """Run a ``brainsr`` command in a child process; (seconds, peak RSS in MB, CPU seconds, its log)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        err.seek(0)
        text = err.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd[3:6])} failed:\n{text[-3000:]}")
    return seconds, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime, text


def _steps(log: str) -> dict[str, float]:
    """Seconds per step, from the ``session: {...}`` line the command logs."""
    for line in log.splitlines():
        if "session: {" in line:
            return json.loads(line[line.index("{") :])
    return {}


def bench_subject(bids_dir: Path, subject: str, work: Path, pre: dict) -> list[dict]:
    """Time the preprocessing of each session of one subject, every prep, as the workflow runs it."""
    exe = [sys.executable, "-m", "brainsr.cli", "preprocess"]
    tpl, tpl_mask = work / "tpl.nii.gz", work / "tplmask.nii.gz"
    cmd = ["template", "--spacing", str(pre["grid_mm"]), "--margin", str(pre["crop_margin_mm"])]
    sec, mb, cpu, _ = _run(exe + cmd + ["--out-image", str(tpl), "--out-mask", str(tpl_mask)])
    rows = [{"session": "", "step": "template", "seconds": sec, "cpu_s": cpu, "peak_mb": mb}]
    preps = [prep_label(a, v) for a in pre["alignments"] for v in ([None] if a == "warp" else pre["build_variants"])]
    settings = json.dumps({k: pre[k] for k in SETTING_KEYS})
    for ses in ("clinical", "research"):
        anat = bids_dir / f"sub-{subject}" / f"ses-{ses}" / "anat"
        images = [f"{s}={anat / f'sub-{subject}_ses-{ses}_{s}.nii.gz'}" for s in SEQS]
        cmd = ["session", "--image", *images, "--root", str(work / "preprocess"), "--space", TEMPLATE_SPACE]
        cmd += ["--subject", subject, "--session", ses, "--preps", *preps, "--template", str(tpl)]
        sec, mb, cpu, log = _run(exe + cmd + ["--template-mask", str(tpl_mask), "--settings-json", settings])
        rows.append({"session": ses, "step": "session (all)", "seconds": sec, "cpu_s": cpu, "peak_mb": mb})
        rows += [{"session": ses, "step": step, "seconds": s} for step, s in _steps(log).items()]
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bids-dir", type=Path, required=True)
    p.add_argument("--subject", default="P001")
    p.add_argument("--out", type=Path, default=Path("benchmark_preprocess.tsv"))
    args = p.parse_args()
    pre = validate_config({})["preprocess"]
    with tempfile.TemporaryDirectory(prefix="brainsr-bench-") as work:
        rows = bench_subject(args.bids_dir, args.subject, Path(work), pre)
    df = pd.DataFrame(rows)
    whole = df[df.step.isin(["template", "session (all)"])]
    total = {"session": "", "step": "TOTAL", "seconds": whole.seconds.sum(), "cpu_s": whole.cpu_s.sum()}
    df = pd.concat([df, pd.DataFrame([{**total, "peak_mb": whole.peak_mb.max()}])], ignore_index=True)
    df.insert(0, "subject", args.subject)
    df.to_csv(args.out, sep="\t", index=False, float_format="%.1f")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
