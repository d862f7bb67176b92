"""Intensity scaling against the synthetic truth (issue 20 item 2): re-scale a finished run's sessions with each
method and measure, per session and sequence, the mean of the true white matter and the share of true WMH voxels
at the clip value.

    python benchmarks/intensity_scaling.py --run results --methods wm percentile --out benchmarks/intensity.tsv

It runs the preprocessing chain's own resampling step (:func:`brainsr.preprocess.pipeline.resample_session`) on
the run's native brains and transforms (prep ``affinelinear``), and reads the truth labels in template space.
The summary (printed, and ``--out`` with ``_summary`` added) gives the between-subject SD of the true-WM mean per
session kind and sequence, and the WMH voxels at the clip value.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import yaml

from brainsr import SEQUENCES, TEMPLATE_SPACE
from brainsr.config import validate_config
from brainsr.io import write_with_summary
from brainsr.preprocess.layout import PrepLayout, intensity_settings
from brainsr.preprocess.pipeline import resample_session
from brainsr.preprocess.qc import _resample_nearest

REPO = Path(__file__).resolve().parents[1]
LABELS = {"csf": 1, "gm": 2, "wm": 3, "wmh": 5}


def _session_rows(run: Path, lay: PrepLayout, ids: tuple[str, str], pre: dict, work: Path) -> list[dict]:
    """Resample and scale one session as the chain does, then its tissue means against the truth labels."""
    outs = {q: str(work / f"{q}.nii.gz") for q in SEQUENCES}
    res = f"{pre['grid_mm']:g}".replace(".", "p")
    resample_session(
        {q: lay.brain(*ids, q) for q in SEQUENCES},
        lay.mask(*ids),
        str(run / "preprocess" / f"space-{TEMPLATE_SPACE}_res-{res}_desc-brain_T1w.nii.gz"),
        lay.tpl_xfm(*ids, "affinecr"),
        {q: lay.seq_xfm(*ids, q) for q in SEQUENCES[1:]},
        interpolation="linear",
        intensity=intensity_settings(pre),
        out_images=outs,
        out_mask=str(work / "mask.nii.gz"),
        prep="affinelinear",
    )
    sub, ses = ids
    truth = run / "sourcedata/synthetic/derivatives/groundtruth" / f"sub-{sub}/ses-{ses}/anat"
    labels = _resample_nearest(
        nib.load(truth / f"sub-{sub}_ses-{ses}_space-{TEMPLATE_SPACE}_desc-tissue_dseg.nii.gz"),
        nib.load(work / "mask.nii.gz"),
    ).astype(int)
    rows = []
    for seq, path in outs.items():
        data = np.asarray(nib.load(path).dataobj)
        wmh = data[labels == LABELS["wmh"]]
        row = {"subject": sub, "session": ses, "sequence": seq, "wmh_voxels": wmh.size}
        row.update({f"{k}_mean": float(data[labels == v].mean()) for k, v in LABELS.items() if (labels == v).any()})
        row["wmh_at_clip_pct"] = float((wmh >= 1.0 - 1e-6).mean() * 100) if wmh.size else np.nan
        rows.append(row)
    return rows


def measure(run: Path, method: str, config: dict) -> pd.DataFrame:
    """Every preprocessed session of ``run`` (affinelinear built), scaled by ``method``."""
    pre = {**config["preprocess"], "rescale": method}
    lay = PrepLayout(str(run / "preprocess"), TEMPLATE_SPACE, SEQUENCES)
    rows = []
    for mask in sorted(
        (run / "preprocess").glob(f"sub-*/ses-*/anat/*_space-{TEMPLATE_SPACE}_desc-affinelinear_mask.nii.gz")
    ):
        sub, ses = (part.split("-", 1)[1] for part in mask.name.split("_")[:2])
        with tempfile.TemporaryDirectory() as work:
            rows += _session_rows(run, lay, (sub, ses), pre, Path(work))
    return pd.DataFrame(rows).assign(method=method)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Between-subject SD of the true-WM mean, and true WMH voxels at the clip value, by method x kind x sequence."""
    kind = table.session.where(table.session.isin(["clinical", "research"]), "longitudinal")
    grouped = table.assign(kind=kind, clipped=table.wmh_at_clip_pct * table.wmh_voxels / 100).groupby(
        ["method", "kind", "sequence"]
    )
    return pd.DataFrame(
        {
            "sessions": grouped.size(),
            "wm_mean": grouped.wm_mean.mean(),
            "wm_sd": grouped.wm_mean.std(),
            "wmh_mean": grouped.wmh_mean.mean(),
            "wmh_at_clip_pct": 100 * grouped.clipped.sum() / grouped.wmh_voxels.sum(),
            "wmh_at_clip_pct_max": grouped.wmh_at_clip_pct.max(),
        }
    ).reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="output_dir of a finished synthetic run")
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--methods", nargs="+", default=["wm", "percentile"])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "intensity.tsv")
    args = parser.parse_args()
    config = validate_config(yaml.safe_load(args.config.read_text()))
    table = pd.concat([measure(args.run, m, config) for m in args.methods], ignore_index=True)
    write_with_summary(table, summarise(table), args.out)


if __name__ == "__main__":
    main()
