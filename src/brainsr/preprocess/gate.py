"""The preprocessing QC gate: which sessions are fit to train on and to report with the rest (issue 20; the paper
checked and hand-edited every brain mask, section 3.1).

A session fails when its brain mask volume is an outlier of the cohort (robust z: median and 1.4826 MAD over
every session, the spread at least 10 % of the median, beyond ``max_volume_z``) or when the primary prep's T1w is
poorly aligned to the template (normalised cross-correlation below ``min_ncc``, or the mask's Dice with the
template mask below ``min_mask_dice``).

Decisions are frozen on first use, like ``splits.tsv``: the ledger (``<output_dir>/qc_gate.tsv``) keeps every
decision made, and a later run decides only the sessions it has not seen (against the cohort as it is then), so
adding a subject never changes another subject's status. ``override`` (config, by subject) wins over the ledger.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainsr.io import atomic_write_tsv

__all__ = ["LEDGER_COLUMNS", "decide", "failed_subjects", "robust_z", "update_gate"]

#: Columns of the ledger, in order (``final`` and ``override`` are added in the gate table).
LEDGER_COLUMNS = ("subject", "session", "brain_ml", "volume_z", "ncc", "mask_dice", "status", "reason", "decided")


#: Smallest spread of the cohort's mask volumes, as a fraction of their median: adults' intracranial volumes
#: differ by about 10 % (SD), and a small cohort's MAD can be far tighter (the tiny preset's eight sessions: 40 ml),
#: which made a subject with a smaller head an outlier.
MIN_VOLUME_SPREAD = 0.10


def robust_z(values: np.ndarray, cohort: np.ndarray) -> np.ndarray:
    """(x - median) / scale of ``values`` against ``cohort``, scale = 1.4826 MAD (a spread that one outlier
    cannot inflate), at least :data:`MIN_VOLUME_SPREAD` x the median."""
    values, cohort = np.asarray(values, float), np.asarray(cohort, float)
    centre = np.median(cohort)
    scale = max(1.4826 * np.median(np.abs(cohort - centre)), MIN_VOLUME_SPREAD * abs(centre))
    return np.zeros_like(values) if scale == 0 else (values - centre) / scale


def decide(sessions: pd.DataFrame, cohort_ml: np.ndarray, settings: Mapping[str, Any]) -> pd.DataFrame:
    """Status (``pass`` / ``fail``) and reason of each row of ``sessions`` (brain_ml, ncc, mask_dice), the volume
    judged against ``cohort_ml`` (every session's mask volume, these included)."""
    z = robust_z(sessions["brain_ml"].to_numpy(float), cohort_ml)
    reasons = [
        "; ".join(
            why
            for bad, why in (
                (abs(zi) > settings["max_volume_z"], f"mask volume robust z {zi:+.1f}"),
                (ncc < settings["min_ncc"], f"T1w-template NCC {ncc:.2f}"),
                (dice < settings["min_mask_dice"], f"mask-template Dice {dice:.2f}"),
            )
            if bad
        )
        for zi, ncc, dice in zip(z, sessions["ncc"], sessions["mask_dice"], strict=True)
    ]
    out = sessions.assign(volume_z=z.round(3), reason=reasons)
    return out.assign(status=np.where(out["reason"] == "", "pass", "fail"))


def _sessions(quality: Sequence[str | Path], prep: str) -> pd.DataFrame:
    """One row per session's alignment-QC table: the ``prep`` row, or the first where the session lacks it."""
    rows = []
    for path in quality:
        table = pd.read_csv(path, sep="\t", dtype={"subject": str, "session": str})
        rows.append(table[table["prep"] == prep].head(1) if (table["prep"] == prep).any() else table.head(1))
    rows = pd.concat(rows, ignore_index=True)
    return rows[["subject", "session", "brain_ml", "ncc", "mask_dice"]]


def _finals(table: pd.DataFrame, gate: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Each row's override (config, by subject) and final status: the override where given, else the frozen
    status; ``pass`` everywhere when the gate is disabled."""
    override = {str(k): str(v) for k, v in (gate.get("override") or {}).items()}
    given = [override.get(s, "") for s in table["subject"]]
    if not gate.get("enabled", True):
        return given, ["pass"] * len(given)
    return given, [o or st for o, st in zip(given, table["status"], strict=True)]


def update_gate(
    quality: Sequence[str | Path],
    ledger: str | Path,
    settings: Mapping[str, Any],
    prep: str,
    out: str | Path | None = None,
) -> pd.DataFrame:
    """Decide the sessions of ``quality`` that ``ledger`` lacks, add them to it, and return (and write to ``out``)
    the gate table: the ledger's rows of these sessions, with ``override`` and the ``final`` status."""
    columns = [*LEDGER_COLUMNS, "override", "final"]
    if not quality:
        empty = pd.DataFrame(columns=columns)
        if out is not None:
            atomic_write_tsv(empty, out)
        return empty
    sessions = _sessions(quality, prep)
    ledger = Path(ledger)
    known = (
        pd.read_csv(ledger, sep="\t", dtype={"subject": str, "session": str, "reason": str}).fillna({"reason": ""})
        if ledger.exists()
        else None
    )
    known = known if known is not None else pd.DataFrame(columns=list(LEDGER_COLUMNS))
    seen = set(zip(known["subject"], known["session"], strict=True))
    new = sessions[[(s, t) not in seen for s, t in zip(sessions["subject"], sessions["session"], strict=True)]]
    if len(new):
        cohort = np.concatenate([known["brain_ml"].to_numpy(float), new["brain_ml"].to_numpy(float)])
        made = decide(new, cohort, settings).assign(decided=datetime.date.today().isoformat())
        known = pd.concat([known, made[list(LEDGER_COLUMNS)]], ignore_index=True) if len(known) else made
        atomic_write_tsv(known[list(LEDGER_COLUMNS)], ledger, float_format="%.6g")
    keys = set(zip(sessions["subject"], sessions["session"], strict=True))
    table = known[[(s, t) in keys for s, t in zip(known["subject"], known["session"], strict=True)]].copy()
    table["override"], table["final"] = _finals(table, settings)
    table = table.sort_values(["subject", "session"]).reset_index(drop=True)[columns]
    if out is not None:
        atomic_write_tsv(table, out, float_format="%.6g")
    return table


def failed_subjects(gate: Mapping[str, Any] | None, table: pd.DataFrame | None = None) -> list[str]:
    """Subjects kept out by the QC gate: ``gate`` is ``{"table": gate table, "enabled", "override": {subject:
    pass | fail}}`` (the workflow's spec; ``table`` given: that table instead of the file); a subject fails with
    any failed session, unless overridden. None without a gate, when it is disabled, or before its table exists."""
    gate = gate or {}
    if not gate.get("enabled", True):
        return []
    if table is None and gate.get("table") and Path(gate["table"]).exists():
        table = pd.read_csv(gate["table"], sep="\t", dtype={"subject": str, "session": str})
    forced = {str(s) for s, v in (gate.get("override") or {}).items() if v == "fail"}
    if table is None:
        return sorted(forced)
    _, final = _finals(table, gate)
    return sorted({s for s, f in zip(table["subject"], final, strict=True) if f == "fail"} | forced)
