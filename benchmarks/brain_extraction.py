"""Brain-extraction engines side by side against the synthetic cohort's true intracranial volume (paper 3.1,
issue 20 item 1).

For each session, the images the pipeline hands :func:`brainsr.preprocess.brain.extract_brain` are built once by
the chain's own code (:func:`brainsr.preprocess.pipeline.session_on_iso`: N4, rigid alignment to T1w, the 1 mm
T1w-space grid), then every engine runs on them. Each mask is compared with the ground truth on the truth's grid
(Dice) and by volume::

    python benchmarks/brain_extraction.py results/sourcedata/synthetic benchmarks/brain_extraction.tsv \\
        [--engines deepbet bet deepbet:t1_fraction=0] [--subjects P001 C001] [--sessions clinical research]

An engine may carry parameters of :func:`brainsr.preprocess.brain.extract_brain` after a colon
(``deepbet:t1_fraction=0,t2_grow_mm=6``), to measure a setting against the default on the same inputs.

Writes one row per session x engine (volume error %, Dice, CPU seconds of the engine) and prints, per engine, how
many sessions are within 5 % of the true volume with Dice >= 0.95, the error range and the lowest Dice.
"""

from __future__ import annotations

import argparse
import resource
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import yaml

from brainsr.base.arrays import dice
from brainsr.config import validate_config
from brainsr.io import write_with_summary
from brainsr.preprocess.brain import extract_brain
from brainsr.preprocess.pipeline import session_on_iso
from brainsr.preprocess.resample import resample

REPO = Path(__file__).resolve().parents[1]
SEQUENCES = ("T1w", "T2w", "FLAIR")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _sessions(cohort: Path, subjects: list[str] | None, sessions: list[str] | None) -> list[tuple[str, str]]:
    found = sorted(
        (p.parents[1].name[4:], p.parent.name[4:])
        for p in cohort.glob("sub-*/ses-*/anat")
        if not subjects or p.parents[1].name[4:] in subjects
    )
    return [(s, t) for s, t in found if not sessions or t in sessions]


def engine_spec(spec: str) -> tuple[str, dict[str, object]]:
    """``"deepbet:t1_fraction=0,t2_grow_mm=6"`` -> ``("deepbet", {"t1_fraction": 0, "t2_grow_mm": 6})``."""
    name, _, rest = spec.partition(":")
    pairs = [item.split("=", 1) for item in rest.split(",") if item]
    if any(len(pair) != 2 for pair in pairs):
        raise SystemExit(f"engine {spec!r}: parameters must be KEY=VALUE, separated by commas")
    return name, {key: yaml.safe_load(value) for key, value in pairs}


def score(mask: nib.Nifti1Image, truth: nib.Nifti1Image) -> dict[str, float]:
    """Dice on the truth's grid (mask resampled, nearest neighbour) and the volume error (%) of the mask."""
    on_truth = np.asarray(resample(mask, truth, [], "nearest").dataobj) > 0.5
    true = np.asarray(truth.dataobj) > 0.5
    ml = float((np.asarray(mask.dataobj) > 0).sum() * np.prod(mask.header.get_zooms()[:3]) / 1000)
    true_ml = float(true.sum() * np.prod(truth.header.get_zooms()[:3]) / 1000)
    return {"dice": dice(on_truth, true), "volume_ml": ml, "true_ml": true_ml, "error_pct": 100 * (ml / true_ml - 1)}


def measure(cohort: Path, ids: tuple[str, str], engines: list[str], pre: dict) -> list[dict]:
    """Every engine on one session's images."""
    sub, ses = ids
    anat = cohort / f"sub-{sub}" / f"ses-{ses}" / "anat"
    images = {q: str(anat / f"sub-{sub}_ses-{ses}_{q}.nii.gz") for q in SEQUENCES}
    on_iso = session_on_iso(images, bias=pre["bias"], iso_mm=pre["iso_mm"], level_mm=pre["session_level_mm"])
    truth = cohort / f"derivatives/groundtruth/sub-{sub}/ses-{ses}/anat/sub-{sub}_ses-{ses}_space-T1w_desc-brain_mask"
    truth_img = nib.load(f"{truth}.nii.gz")
    rows = []
    for engine in engines:
        name, params = engine_spec(engine)
        start = _cpu()
        mask = extract_brain(on_iso, name, **params)
        rows.append({"subject": sub, "session": ses, "engine": engine, "cpu_s": round(_cpu() - start, 2)})
        rows[-1].update(score(mask, truth_img))
    return rows


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per engine: sessions, how many meet the target (|error| <= 5 %, Dice >= 0.95), error range, lowest Dice."""
    ok = (table.error_pct.abs() <= 5) & (table.dice >= 0.95)
    grouped = table.assign(ok=ok).groupby("engine")
    return pd.DataFrame(
        {
            "sessions": grouped.size(),
            "meet_target": grouped.ok.sum(),
            "error_min_pct": grouped.error_pct.min(),
            "error_max_pct": grouped.error_pct.max(),
            "dice_min": grouped.dice.min(),
            "dice_median": grouped.dice.median(),
            "cpu_s_median": grouped.cpu_s.median(),
        }
    ).reset_index()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cohort", type=Path, help="BIDS root of the synthetic cohort (with derivatives/groundtruth)")
    ap.add_argument("out", type=Path, help="output TSV (the summary beside it, _summary added)")
    ap.add_argument("--engines", nargs="+", default=["deepbet", "bet"])
    ap.add_argument("--subjects", nargs="+", help="labels without sub- (default: every subject)")
    ap.add_argument("--sessions", nargs="+", help="labels without ses- (default: every session)")
    ap.add_argument("--config", type=Path, default=REPO / "config.yaml", help="its preprocess section is used")
    args = ap.parse_args()
    pre = validate_config(yaml.safe_load(args.config.read_text()))["preprocess"]
    rows = []
    for ids in _sessions(args.cohort, args.subjects, args.sessions):
        rows += measure(args.cohort, ids, args.engines, pre)
        print(pd.DataFrame(rows[-len(args.engines) :]).to_string(index=False, header=len(rows) == len(args.engines)))
    table = pd.DataFrame(rows)
    write_with_summary(table, summarise(table), args.out)


if __name__ == "__main__":
    main()
