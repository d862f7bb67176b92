"""Group tables of the evaluation (paper 4.2-4.9): Tables 1, 2, S1, S3-S6 and the Bland-Altman / longitudinal data.

The per-scan files of ``brainsr evaluate`` and ``brainsr segment`` are gathered into long tables (one value per
row, every column a key), from which the paper's tables are summaries: mean ± SD over the evaluated subjects (and,
for image and quality metrics, over the three sequences).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from brainsr.metrics.agreement import OVERLAP_METRICS, bland_altman

__all__ = [
    "AGREEMENT_TABLES",
    "QUALITY_TABLE_METRICS",
    "agreement_long",
    "agreement_table",
    "bland_altman_table",
    "findings",
    "image_long",
    "longitudinal_table",
    "mean_sd",
    "paired_volumes",
    "quality_errors",
    "quality_long",
    "read_json",
    "subject_findings",
    "volumes_long",
]

#: Table S3-S6: the class each table reports (paper 4.9; agreement with the research scan's segmentation).
AGREEMENT_TABLES: dict[str, str] = {"tableS3": "csf", "tableS4": "sinus", "tableS5": "pial", "tableS6": "wmh"}
#: Table 2: quality metrics whose error against the research scan is reported (paper form, then MRIQC form).
QUALITY_TABLE_METRICS = (
    "cjv",
    "cjv_mriqc",
    "efc",
    "efc_mriqc",
    "fwhm_avg_mm",
    "wm2max",
    "wm2max_mriqc",
    "gmwm_mean",
    "gmcsf_mean",
    "wmcsf_mean",
)
#: Volumes of Fig. 10 (Bland-Altman) and Fig. 13 (longitudinal) and their labels.
VOLUME_CLASSES = ("csf", "sinus", "pial", "tissue", "wmh")
CLASS_NAMES = {
    "csf": "CSF",
    "sinus": "veins / venous sinuses",
    "pial": "pial layers / partial volume",
    "tissue": "normal tissue (GM + WM)",
    "wmh": "WMH",
}


def read_json(path: str | Path) -> dict:
    """One per-scan JSON file of the evaluation."""
    with open(path) as fh:
        return json.load(fh)


def _long(entries: Iterable[Mapping], rows_of) -> pd.DataFrame:
    """Long table of per-scan JSON files: ``rows_of(data)`` gives the rows of one file, to which the entry's key
    columns (every key of the entry except ``file``) are added."""
    rows = []
    for entry in entries:
        keys = {k: v for k, v in entry.items() if k != "file"}
        rows += [{**keys, **row} for row in rows_of(read_json(entry["file"]))]
    return pd.DataFrame(rows)


def _image_rows(data: Mapping) -> list[dict]:
    rows = []
    for seq, values in data.items():
        if seq in ("metrics", "mean"):
            continue
        for name, value in values.items():
            metric, region = name.rsplit("_", 1)
            rows.append({"sequence": seq, "metric": metric, "region": region, "value": value})
    return rows


def _volume_rows(data: Mapping) -> list[dict]:
    volumes = {k.removesuffix("_ml"): v for k, v in data.items() if k.endswith("_ml")}
    # the evaluated "tissue" class includes its WMH (segment.run.CLASS_LABELS)
    volumes["tissue"] = volumes.get("tissue", 0.0) + volumes.get("wmh", 0.0)
    return [{"class": c, "volume_ml": v} for c, v in volumes.items()]


def image_long(entries: Iterable[Mapping]) -> pd.DataFrame:
    """One row per subject × method × sequence × metric × region from ``brainsr evaluate image`` files.

    ``entries``: dicts with ``file`` and the key columns (subject, protocol, method, prep, ...).
    """
    return _long(entries, _image_rows)


def quality_long(entries: Iterable[Mapping]) -> pd.DataFrame:
    """One row per subject × image set × sequence × quality metric from ``brainsr evaluate quality`` files."""
    return _long(
        entries,
        lambda data: [{"sequence": q, "metric": m, "value": v} for q, vals in data.items() for m, v in vals.items()],
    )


def volumes_long(entries: Iterable[Mapping]) -> pd.DataFrame:
    """One row per segmented scan set × class: volume in ml (``brainsr segment classes`` JSON files)."""
    return _long(entries, _volume_rows)


def agreement_long(entries: Iterable[Mapping]) -> pd.DataFrame:
    """One row per segmentation × reference (research | truth) × class × overlap metric."""
    return _long(
        entries,
        lambda data: [
            {"reference": ref, "class": cls, "metric": m, "value": v}
            for ref, classes in data.items()
            for cls, metrics in classes.items()
            for m, v in metrics.items()
        ],
    )


def mean_sd(values: pd.Series) -> str:
    """``mean ± SD`` (ddof 1; SD omitted for one value) with 4 significant digits, NaN-aware."""
    v = values.dropna().to_numpy(float)
    if v.size == 0:
        return "n/a"
    if v.size == 1:
        return f"{v[0]:.4g}"
    return f"{v.mean():.4g} ± {v.std(ddof=1):.2g}"


def summary(frame: pd.DataFrame, by: list[str], columns: str, values: str = "value") -> pd.DataFrame:
    """Pivot of ``mean ± SD`` of ``values`` per ``by`` group (rows) and ``columns`` value (columns)."""
    table = frame.groupby([*by, columns], sort=False)[values].apply(mean_sd).unstack(columns)
    ordered = list(dict.fromkeys(frame[columns]))
    return table[ordered].reset_index()


def quality_errors(quality: pd.DataFrame, metrics: Iterable[str] = QUALITY_TABLE_METRICS) -> pd.DataFrame:
    """|metric(method) − metric(research)| per subject × sequence × metric (Table 2's errors, paper 4.6).

    ``quality`` rows have ``image`` = ``research`` for the reference scans (of each ``prep``) and a method name
    otherwise; each method is compared with the research scan of its own prep.
    """
    metrics = list(metrics)
    q = quality[quality.metric.isin(metrics)]
    ref = q[q.image == "research"][["subject", "prep", "sequence", "metric", "value"]]
    est = q[q.image != "research"]
    merged = est.merge(ref, on=["subject", "prep", "sequence", "metric"], suffixes=("", "_research"))
    if len(merged) != len(est):
        raise ValueError("some quality files have no research-scan counterpart of the same subject and prep")
    merged["error"] = (merged["value"] - merged["value_research"]).abs()
    return merged


def agreement_table(agreement: pd.DataFrame, cls: str, reference: str = "research") -> pd.DataFrame:
    """Mean ± SD of each overlap metric of one class per method (Tables S3-S6)."""
    part = agreement[(agreement["class"] == cls) & (agreement.reference == reference)]
    part = part[part.metric.isin(OVERLAP_METRICS)]
    return summary(part, ["method"], "metric")


def paired_volumes(volumes: pd.DataFrame) -> pd.DataFrame:
    """Each method's class volumes beside the research scan's of the same subject and prep (``volume_ml_research``).

    ``volumes`` rows have ``image`` = ``research`` for the reference scans.
    """
    ref = volumes[volumes.image == "research"][["subject", "prep", "class", "volume_ml"]]
    est = volumes[volumes.image != "research"]
    return est.merge(ref, on=["subject", "prep", "class"], suffixes=("", "_research"))


def bland_altman_table(volumes: pd.DataFrame, classes: Iterable[str] = VOLUME_CLASSES) -> pd.DataFrame:
    """Bland-Altman of each method's volumes against the research scan's, per class (Fig. 10).

    ``volumes`` rows have ``image`` = ``research`` for the reference. Fewer than 2 subjects (or a zero pair mean)
    give a row with the reason and NaN numbers rather than an invented agreement.
    """
    merged = paired_volumes(volumes)
    rows = []
    for (method, cls), group in merged.groupby(["image", "class"], sort=False):
        if cls not in classes:
            continue
        row = {"method": method, "class": cls, "n": len(group)}
        try:
            ba = bland_altman(group["volume_ml"], group["volume_ml_research"])
        except ValueError as exc:
            rows.append(
                {
                    **row,
                    "bias_pct": np.nan,
                    "sd_pct": np.nan,
                    "loa_low_pct": np.nan,
                    "loa_high_pct": np.nan,
                    "note": str(exc),
                }
            )
            continue
        rows.append(
            {
                **row,
                "bias_pct": ba.bias,
                "sd_pct": ba.sd,
                "loa_low_pct": ba.loa_low,
                "loa_high_pct": ba.loa_high,
                "note": "",
            }
        )
    return pd.DataFrame(rows)


def longitudinal_table(volumes: pd.DataFrame, classes: Iterable[str] = ("csf", "sinus", "pial")) -> pd.DataFrame:
    """Median (over control subjects) % difference of each class volume from the subject's first month (Fig. 13).

    ``volumes`` rows carry ``subject``, ``month``, ``class`` and ``volume_ml``.
    """
    part = volumes[volumes["class"].isin(list(classes))].copy()
    first = part.sort_values("month").groupby(["subject", "class"])["volume_ml"].transform("first")
    part["diff_pct"] = np.where(first > 0, 100.0 * (part["volume_ml"] - first) / first.where(first > 0, 1), np.nan)
    out = (
        part.groupby(["class", "month"])
        .agg(n=("subject", "nunique"), median_volume_ml=("volume_ml", "median"), median_diff_pct=("diff_pct", "median"))
        .reset_index()
    )
    return out


#: Direction of "better" of the image metrics (Table 1) and the overlap metrics (Tables S3-S6).
_HIGHER_BETTER = {"mae": False, "nmse": False, "nmse_paper": False, "psnr": True, "ssim": True, "dice": True}


def _row(section: str, claim: str, holds: str, mine: float, theirs: float, note: str | float = np.nan) -> dict:
    """One row of the findings table (``note``: the numbers behind a claim, where one row hides several)."""
    return {
        "section": section,
        "claim": claim,
        "holds": holds,
        "method_value": mine,
        "comparison_value": theirs,
        "note": note,
    }


def _finding(section: str, claim: str, values: pd.Series, ours: str, other: str, key: str, higher_better: bool) -> dict:
    """One row of :func:`findings`: does ``values[ours, key]`` beat ``values[other, key]`` in the stated direction?"""
    mine, theirs = (float(values.get((name, key), np.nan)) for name in (ours, other))
    if not (np.isfinite(mine) and np.isfinite(theirs)):
        holds = "n/a"
    else:
        holds = "yes" if (mine > theirs if higher_better else mine < theirs) else "no"
    return _row(section, claim, holds, mine, theirs)


def _means(frame: pd.DataFrame, by: list[str], column: str) -> pd.Series:
    return frame.groupby(by)[column].mean() if len(frame) else pd.Series(dtype=float)


def findings(
    image: pd.DataFrame,
    errors: pd.DataFrame,
    agreement: pd.DataFrame,
    bland: pd.DataFrame,
    method: str,
    baseline: str,
    rivals: Iterable[str] = (),
) -> pd.DataFrame:
    """The paper's main claims checked on this run's numbers: ``method`` against ``baseline`` (and ``rivals``).

    Paper 4.6 / Table 1: the attention U-Net + critic has lower MAE and higher PSNR/SSIM than the U-Net and
    ViT (and, 4.5, than the interpolated input); 4.9.1 / Table 2: its quality metrics are closer to the research
    scan's than the interpolated scan's; 4.9.2 / Tables S3-S6: its segmentations agree better (Dice) with the
    research scan's; Fig. 10: its volume bias is comparable or smaller. Values are means over subjects (and sequences).
    """
    brain = _means(image[image.region == "brain"] if len(image) else image, ["method", "metric"], "value")
    rows = [
        _finding(
            "4.6 Table 1", f"{k.upper()} of {method} better than {other}", brain, method, other, k, _HIGHER_BETTER[k]
        )
        for other in (baseline, *rivals)
        for k in ("mae", "psnr", "ssim")
    ]
    err = _means(errors, ["image", "metric"], "error")
    rows += [
        _finding(
            "4.9.1 Table 2", f"|{k} - research| of {method} smaller than of {baseline}", err, method, baseline, k, False
        )
        for k in ("cjv", "efc", "fwhm_avg_mm", "wm2max")
    ]
    dice = (
        agreement[(agreement.metric == "dice") & (agreement.reference == "research")] if len(agreement) else agreement
    )
    dice = _means(dice, ["method", "class"], "value")
    rows += [
        _finding(
            f"4.9.2 {key.replace('table', 'Table ')}",
            f"Dice of {cls} with the research segmentation: {method} higher than {baseline}",
            dice,
            method,
            baseline,
            cls,
            True,
        )
        for key, cls in AGREEMENT_TABLES.items()
    ]
    bias = bland.set_index(["method", "class"])["bias_pct"].abs() if len(bland) else pd.Series(dtype=float)
    rows += [
        _finding(
            "4.9.2 Fig. 10",
            f"|Bland-Altman bias| of {cls} volume (% of mean): {method} smaller than {baseline}",
            bias,
            method,
            baseline,
            cls,
            False,
        )
        for cls in VOLUME_CLASSES
    ]
    return pd.DataFrame(rows)


#: A test subject's protocol qualifies for the per-subject claims when at least this many training subjects share it
#: (issue 20: the model has seen the protocol, as for every test subject of the paper).
MIN_TRAINING_SUBJECTS = 3
#: The PSNR margin (dB, brain) by which the method must beat the best interpolation on every qualifying subject.
PSNR_MARGIN_DB = 2.0


def _subject_row(values: pd.DataFrame, method: str, interps: list[str], claim: str) -> dict:
    """One qualifying subject's metric means (method x metric): ``method`` against the interpolation with the
    highest brain PSNR on that subject."""
    psnr = values["psnr"].reindex(interps).dropna()
    if method not in values.index or psnr.empty:
        return _row("4.5 per subject", claim, "n/a", np.nan, np.nan, "no values")
    best, mine = values.loc[psnr.idxmax()], values.loc[method]
    gain = float(mine["psnr"] - best["psnr"])
    holds = gain >= PSNR_MARGIN_DB and mine["mae"] < best["mae"] and mine["ssim"] > best["ssim"]
    note = (
        f"best interpolation {psnr.idxmax()}; PSNR {gain:+.2f} dB; MAE {mine['mae']:.4g} vs {best['mae']:.4g}; "
        f"SSIM {mine['ssim']:.4g} vs {best['ssim']:.4g}"
    )
    return _row("4.5 per subject", claim, "yes" if holds else "no", float(mine["psnr"]), float(best["psnr"]), note)


def _wmh_truth_row(agreement: pd.DataFrame, subjects: list[str], method: str, baseline: str) -> dict:
    """Mean WMH Dice with the ground truth over ``subjects``: ``method`` at least ``baseline``'s."""
    dice = pd.Series(dtype=float)
    if len(agreement):
        truth = agreement[
            (agreement.reference == "truth")
            & (agreement["class"] == "wmh")
            & (agreement.metric == "dice")
            & agreement.subject.isin(subjects)
        ]
        dice = truth.groupby("method")["value"].mean()
    mine, theirs = (float(dice.get(name, np.nan)) for name in (method, baseline))
    holds = ("yes" if mine >= theirs else "no") if np.isfinite(mine) and np.isfinite(theirs) else "n/a"
    claim = f"WMH Dice with the ground truth: {method} at least {baseline}'s (mean over the qualifying test subjects)"
    return _row("4.9.2 WMH", claim, holds, mine, theirs, f"subjects: {', '.join(subjects) or 'none'}")


def subject_findings(
    image: pd.DataFrame,
    agreement: pd.DataFrame,
    method: str,
    baseline: str,
    interpolations: Iterable[str],
    training_protocols: Mapping[str, int],
) -> pd.DataFrame:
    """Issue 20's per-subject claims, on the test subjects whose protocol has >= :data:`MIN_TRAINING_SUBJECTS`
    training subjects: ``method`` beats the best interpolation of each subject (highest brain PSNR; means over
    sequences) by >= :data:`PSNR_MARGIN_DB` dB PSNR with lower MAE and higher SSIM (paper 4.5, Table 1), one row
    per subject and one for all of them; and its WMH Dice with the ground truth is at least ``baseline``'s (its own
    prep's interpolation), averaged over those subjects (paper 4.9.2)."""
    qualifying = sorted(p for p, n in training_protocols.items() if n >= MIN_TRAINING_SUBJECTS)
    rows, subjects = [], []
    brain = image[(image.region == "brain") & image.protocol.isin(qualifying)] if len(image) else image
    if len(brain):
        means = brain.groupby(["subject", "protocol", "method", "metric"])["value"].mean().unstack("metric")
        for (subject, protocol), values in means.groupby(level=["subject", "protocol"]):
            claim = (
                f"{subject} ({protocol}, {training_protocols[protocol]} training subjects): {method} beats the "
                f"best interpolation by >= {PSNR_MARGIN_DB:g} dB PSNR, with lower MAE and higher SSIM"
            )
            rows.append(_subject_row(values.droplevel(["subject", "protocol"]), method, list(interpolations), claim))
            subjects.append(subject)
    holding = sum(r["holds"] == "yes" for r in rows)
    claim = (
        f"every qualifying test subject (protocol with >= {MIN_TRAINING_SUBJECTS} training subjects): {method} "
        f"beats the best interpolation by >= {PSNR_MARGIN_DB:g} dB PSNR, lower MAE, higher SSIM"
    )
    holds = ("yes" if holding == len(rows) else "no") if rows else "n/a"
    note = f"{holding} of {len(rows)} subjects; qualifying protocols: {', '.join(qualifying) or 'none'}"
    rows.append(_row("4.5 per subject", claim, holds, float(holding), float(len(rows)), note))
    rows.append(_wmh_truth_row(agreement, subjects, method, baseline))
    return pd.DataFrame(rows)
