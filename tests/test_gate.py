"""The preprocessing QC gate (brainsr.preprocess.gate): decisions, a planted failure, frozen decisions, overrides,
and its consumers (training specs, the group tables)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainsr.preprocess.gate import decide, failed_subjects, robust_z, update_gate
from brainsr.train.spec import gated

SETTINGS = {"enabled": True, "max_volume_z": 3.5, "min_ncc": 0.6, "min_mask_dice": 0.75, "override": {}}


def test_robust_z_by_hand() -> None:
    """Cohort 1, 2, 3, 4, 100: median 3, MAD 1 (|x - 3| = 2, 1, 0, 1, 97), scale 1.4826."""
    cohort = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    np.testing.assert_allclose(robust_z(cohort, cohort), np.array([-2, -1, 0, 1, 97]) / 1.4826)
    # a tight cohort: the spread is at least 10 % of the median (adults' ICVs differ by about that much)
    assert robust_z(np.array([5.0]), np.array([2.0, 2.0, 2.0]))[0] == pytest.approx((5 - 2) / 0.2)
    tiny = np.array([1790.0, 1793.0, 1816.0, 1820.0, 1740.0, 1752.0, 1500.0, 1490.0])  # a tiny run's sessions
    assert robust_z(np.array([1490.0]), tiny)[0] == pytest.approx((1490 - 1771) / 177.1)  # a smaller head: z -1.6


def _qc_table(folder: Path, subject: str, session: str, ncc: float, brain_ml: float, dice: float = 0.88) -> Path:
    path = folder / f"sub-{subject}_ses-{session}_qc.tsv"
    rows = [
        {"subject": subject, "session": session, "prep": prep, "ncc": ncc, "nmi": 1.1, "mask_dice": dice}
        for prep in ("affinelinear", "warp")
    ]
    pd.DataFrame(rows).assign(brain_ml=brain_ml).to_csv(path, sep="\t", index=False)
    return path


def _cohort(folder: Path) -> list[Path]:
    """Eight sessions of 1400-1470 ml, well aligned; sub-P003 clinical planted with a failed alignment (NCC 0.44,
    as sub-C003 month00 on a default run) and sub-P004 research with a mask that kept the scalp (2100 ml)."""
    tables = []
    for k, subject in enumerate(("P001", "P002", "P003", "P004")):
        for j, session in enumerate(("clinical", "research")):
            ncc = 0.44 if (subject, session) == ("P003", "clinical") else 0.85
            ml = 2100.0 if (subject, session) == ("P004", "research") else 1400.0 + 10 * (2 * k + j)
            tables.append(_qc_table(folder, subject, session, ncc, ml))
    return tables


def test_decide_names_each_failure() -> None:
    rows = pd.DataFrame({"brain_ml": [1450.0, 2100.0, 1440.0], "ncc": [0.85, 0.85, 0.5], "mask_dice": [0.9, 0.9, 0.7]})
    out = decide(rows, np.array([1400.0, 1420.0, 1440.0, 1450.0, 1460.0, 2100.0]), SETTINGS)
    assert list(out.status) == ["pass", "fail", "fail"]
    assert out.reason[1].startswith("mask volume robust z +")
    assert out.reason[2] == "T1w-template NCC 0.50; mask-template Dice 0.70"


def test_gate_fails_the_planted_sessions_and_freezes_its_decisions(tmp_path: Path) -> None:
    tables, ledger, out = _cohort(tmp_path), tmp_path / "qc_gate.tsv", tmp_path / "gate.tsv"
    gate = update_gate(tables, ledger, SETTINGS, "affinelinear", out)
    assert len(gate) == 8 and set(gate.loc[gate.final == "fail", "subject"]) == {"P003", "P004"}
    assert failed_subjects({"table": str(out)}) == ["P003", "P004"]
    first = ledger.read_text()
    # a new subject, and stricter settings: earlier decisions stay as they were
    tables.append(_qc_table(tmp_path, "P005", "clinical", 0.55, 1430.0))
    strict = {**SETTINGS, "min_ncc": 0.9}
    again = update_gate(tables, ledger, strict, "affinelinear", out)
    assert ledger.read_text().startswith(first)  # the first decisions are kept, byte for byte
    assert list(again.loc[again.subject != "P005", "final"]) == list(gate.final)
    assert again.loc[again.subject == "P005", "reason"].item() == "T1w-template NCC 0.55"
    # the override (the paper's hand check) wins; a disabled gate passes every session
    override = {**SETTINGS, "override": {"P003": "pass", "P001": "fail"}}
    table = update_gate(tables, ledger, override, "affinelinear", out)
    assert set(table.loc[table.final == "fail", "subject"]) == {"P001", "P004", "P005"}
    spec = {"table": str(out), "override": {"P003": "pass", "P001": "fail"}}
    assert failed_subjects(spec) == ["P001", "P004", "P005"]
    assert failed_subjects({**spec, "enabled": False}) == [] and failed_subjects(None) == []
    assert (update_gate(tables, ledger, {**SETTINGS, "enabled": False}, "affinelinear", out).final == "pass").all()


def test_training_leaves_out_the_failed_subjects(tmp_path: Path) -> None:
    out = tmp_path / "gate.tsv"
    update_gate(_cohort(tmp_path), tmp_path / "qc_gate.tsv", SETTINGS, "affinelinear", out)
    entry = {"clinical": [], "research": []}
    spec = {
        "train": [{"subject": s, **entry} for s in ("P001", "P003")],
        "validation": [{"subject": s, **entry} for s in ("P002", "P004")],
        "qc_gate": {"table": str(out), "enabled": True, "override": {}},
    }
    kept, left_out = gated(spec)
    assert [e["subject"] for e in kept["train"]] == ["P001"] and [e["subject"] for e in kept["validation"]] == ["P002"]
    assert left_out == ["P003", "P004"]
    kept, left_out = gated({**spec, "qc_gate": {**spec["qc_gate"], "override": {"P004": "pass"}}})
    assert [e["subject"] for e in kept["validation"]] == ["P002", "P004"] and left_out == ["P003"]
