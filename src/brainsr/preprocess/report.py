"""Files the preprocessing QC rules write: per-session figure and tables, group tables (paper 3.1)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from brainsr import __version__
from brainsr.io import atomic_savefig, atomic_write_text, atomic_write_tsv

__all__ = ["session_qc", "write_dataset_description", "write_group_tables", "write_session_accuracy"]


def write_dataset_description(
    path: str | Path,
    source: str,
    name: str = "brainsr preprocessing (bias correction, brain extraction, template alignment)",
    description: str = "Li et al. 2022, section 3.1",
) -> None:
    """BIDS-derivatives ``dataset_description.json`` of a brainsr stage's outputs (preprocessing by default)."""
    meta = {
        "Name": name,
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "brainsr", "Version": __version__, "Description": description}],
        "SourceDatasets": [{"URL": f"file://{Path(source).resolve()}"}],
    }
    atomic_write_text(json.dumps(meta, indent=2) + "\n", path)


def session_qc(
    *,
    images: Mapping[str, Mapping[str, str]],
    masks: Mapping[str, str],
    template: str,
    template_mask: str,
    native_mask: str,
    primary: str,
    title: str,
    figure: str,
    table: str,
) -> pd.DataFrame:
    """Alignment figure of the primary prep and the alignment-quality row of every prep of one session, with the
    volume (ml) of the session's brain mask ``native_mask`` (T1w space), for the QC gate."""
    import matplotlib.pyplot as plt

    from brainsr.base.images import load_checked, zooms_mm
    from brainsr.paths import parse_bids_name
    from brainsr.preprocess.qc import alignment_figure, alignment_quality

    tpl, tpl_mask = load_checked(template), load_checked(template_mask)
    native = load_checked(native_mask)
    brain_ml = float((np.asarray(native.dataobj) > 0).sum() * np.prod(zooms_mm(native)) / 1000.0)
    rows = []
    for prep, seqs in images.items():
        quality = alignment_quality(load_checked(seqs["T1w"]), tpl, tpl_mask, load_checked(masks[prep]))
        entities = parse_bids_name(seqs["T1w"])
        ids = {"subject": entities["subject"], "session": entities["session"], "prep": prep}
        rows.append({**ids, **quality, "brain_ml": round(brain_ml, 2)})
    fig = alignment_figure(
        {s: load_checked(p) for s, p in images[primary].items()}, tpl, load_checked(masks[primary]), title
    )
    atomic_savefig(fig, figure, dpi=110, bbox_inches="tight")
    plt.close(fig)
    df = pd.DataFrame(rows)
    atomic_write_tsv(df, table, float_format="%.6g")
    return df


def write_session_accuracy(spec: Mapping[str, object], out: str | Path) -> pd.DataFrame:
    """Accuracy of one session against the synthetic ground truth (TRE, mask Dice, bias variation)."""
    from brainsr.preprocess.qc import session_accuracy

    df = session_accuracy(**spec)  # type: ignore[arg-type]
    atomic_write_tsv(df, out, float_format="%.6g")
    return df


def _protocols(participants: str | Path) -> dict[str, str]:
    df = pd.read_csv(participants, sep="\t", dtype=str)
    if "protocol" not in df.columns or "participant_id" not in df.columns:
        return {}
    return {pid.removeprefix("sub-"): p for pid, p in zip(df["participant_id"], df["protocol"], strict=True)}


def write_group_tables(
    *,
    quality: Sequence[str],
    accuracy: Sequence[str],
    participants: str,
    out_quality: str,
    out_accuracy: str | None = None,
    out_summary: str | None = None,
) -> None:
    """Group alignment-quality table (+ protocol) and, for synthetic data, the accuracy table and its summary."""
    from brainsr.preprocess.qc import summarise_accuracy

    protocols = _protocols(participants)
    q = pd.concat([pd.read_csv(p, sep="\t", dtype={"subject": str, "session": str}) for p in quality])
    q.insert(2, "protocol", q["subject"].map(protocols).fillna("n/a"))
    atomic_write_tsv(q, out_quality, float_format="%.6g")
    if accuracy and out_accuracy and out_summary:
        acc = pd.concat([pd.read_csv(p, sep="\t", dtype={"subject": str, "session": str}) for p in accuracy])
        acc = acc.fillna({"prep": "", "sequence": ""})
        atomic_write_tsv(acc, out_accuracy, float_format="%.6g")
        atomic_write_tsv(summarise_accuracy(acc, protocols or None), out_summary, float_format="%.6g")
