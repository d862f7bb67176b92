"""Benchmark: preprocess one subject (both sessions, three sequences, every alignment and variant).

Runs the same three steps as the workflow's rules (prepare, register per transform, resample per prep), each in
its own process as Snakemake would, and writes a table of wall time and peak memory (RSS of the step's process)
per step, with the total per subject::

    python benchmarks/preprocess.py --bids-dir results/sourcedata/synthetic --subject P001 --out bench.tsv

Targets (issue 3): <= 5 min per subject in total and <= 4 GB peak per job on 2 cores. ``cpu_s`` is the step's
user + system CPU time: steps well below 2 CPU-seconds per second (the correlation-ratio optimiser) leave a core
free for a second Snakemake job.
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

from brainsr.config import validate_config
from brainsr.preprocess.pipeline import initial_key, prep_label, transform_keys

SEQS = ("T1w", "T2w", "FLAIR")


def _run(cmd: list[str]) -> tuple[float, float, float]:
    """Run a ``brainsr`` command in a child process; (seconds, peak RSS in MB, CPU seconds of that child)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            err.seek(0)
            sys.exit(f"{' '.join(cmd[3:6])} failed:\n{err.read().decode()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime


def _kv(option: str, mapping: dict[str, str]) -> list[str]:
    return [item for k, v in mapping.items() for item in (option, f"{k}={v}")]


def bench_subject(bids_dir: Path, subject: str, work: Path, pre: dict) -> list[dict]:
    """Time every preprocessing step of one subject; each step is a separate process."""
    exe = [sys.executable, "-m", "brainsr.cli"]
    settings = json.dumps({k: pre[k] for k in ("bias", "brain", "iso_mm", "level_mm", "syn_iterations")})
    rows = []
    tpl, tpl_mask = work / "tpl.nii.gz", work / "tplmask.nii.gz"
    cmd = ["preprocess", "template", "--spacing", str(pre["grid_mm"]), "--margin", str(pre["crop_margin_mm"])]
    sec, mb, cpu = _run(exe + cmd + ["--out-image", str(tpl), "--out-mask", str(tpl_mask)])
    rows.append({"session": "", "step": "template", "seconds": sec, "cpu_s": cpu, "peak_mb": mb})
    keys = transform_keys(pre["alignments"], {v: pre["variants"][v] for v in pre["build_variants"]})
    for ses in ("clinical", "research"):
        out = work / ses
        anat = bids_dir / f"sub-{subject}" / f"ses-{ses}" / "anat"
        images = {s: str(anat / f"sub-{subject}_ses-{ses}_{s}.nii.gz") for s in SEQS}
        brains = {s: str(out / f"brain_{s}.nii.gz") for s in SEQS}
        xfm = {s: str(out / f"{s}_to_T1w.mat") for s in SEQS[1:]}
        mask = str(out / "mask.nii.gz")
        cmd = ["preprocess", "prepare", *_kv("--image", images), *_kv("--out-brain", brains), *_kv("--out-xfm", xfm)]
        sec, mb, cpu = _run(exe + cmd + ["--out-mask", mask, "--settings-json", settings])
        step = "prepare (N4 x3, rigid x2, brain extraction)"
        rows.append({"session": ses, "step": step, "seconds": sec, "cpu_s": cpu, "peak_mb": mb})
        files = {}
        for key in keys:  # ordered so that every transform follows the one it starts from
            ext = ".nii.gz" if key == "warp" else ".mat"
            files[key] = str(out / f"{key}{ext}")
            cmd = ["preprocess", "register", "--key", key, "--brain-t1w", brains["T1w"], "--mask", mask]
            cmd += ["--template", str(tpl), "--template-mask", str(tpl_mask), "--settings-json", settings]
            cmd += ["--out", files[key], "--inverse", str(out / f"{key}_inverse{ext}")]
            if initial_key(key):
                cmd += ["--initial", files[initial_key(key)]]
            sec, mb, cpu = _run(exe + cmd)
            rows.append({"session": ses, "step": f"register {key}", "seconds": sec, "cpu_s": cpu, "peak_mb": mb})
        preps = [
            prep_label(a, v) for a in pre["alignments"] for v in ([None] if a == "warp" else pre["build_variants"])
        ]
        for prep in preps:
            if prep == "warp":
                key, interpolation = "warp", pre["warp_interpolation"]
            else:
                alignment = "rigid" if prep.startswith("rigid") else "affine"
                variant = pre["variants"][prep[len(alignment) :]]
                key, interpolation = f"{alignment}{variant['cost']}", variant["interpolation"]
            outs = {s: str(out / prep / f"{s}.nii.gz") for s in SEQS}
            cmd = ["preprocess", "resample", *_kv("--brain", brains), "--mask", mask, "--template", str(tpl)]
            cmd += ["--xfm-template", files[key], *_kv("--xfm", xfm), "--interpolation", interpolation]
            cmd += ["--percentiles", *map(str, pre["rescale_percentiles"]), "--prep", prep, *_kv("--out", outs)]
            sec, mb, cpu = _run(exe + cmd + ["--out-mask", str(out / prep / "mask.nii.gz")])
            rows.append(
                {
                    "session": ses,
                    "step": f"resample {prep} ({interpolation})",
                    "seconds": sec,
                    "cpu_s": cpu,
                    "peak_mb": mb,
                }
            )
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
    total = pd.DataFrame(
        [
            {
                "session": "",
                "step": "TOTAL",
                "seconds": df.seconds.sum(),
                "cpu_s": df.cpu_s.sum(),
                "peak_mb": df.peak_mb.max(),
            },
            {  # what two cores running two jobs at a time need per subject, if the CPU work packs perfectly
                "session": "",
                "step": "TOTAL CPU / 2 cores",
                "seconds": df.cpu_s.sum() / 2,
                "cpu_s": df.cpu_s.sum(),
                "peak_mb": df.peak_mb.max(),
            },
        ]
    )
    df = pd.concat([df, total], ignore_index=True)
    df.insert(0, "subject", args.subject)
    df.to_csv(args.out, sep="\t", index=False, float_format="%.1f")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
