"""Tests for brainsr.bids: discovery of the paired clinical/research dataset."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainsr.bids import (
    SEQUENCES,
    BIDSInputError,
    Inventory,
    assign_split,
    discover,
    read_participants,
)

FRACTIONS = {"train": 0.66, "validation": 0.17, "test": 0.17}


def _write_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.zeros((4, 4, 4), dtype=np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)


def add_session(
    root: Path,
    subject: str,
    session: str,
    sequences: Iterable[str] = SEQUENCES,
    extension: str = ".nii.gz",
    entities: str = "",
) -> None:
    """Write one tiny image per sequence into sub-<subject>/ses-<session>/anat."""
    folder = root / f"sub-{subject}" / f"ses-{session}" / "anat"
    for sequence in sequences:
        _write_image(folder / f"sub-{subject}_ses-{session}_{entities}{sequence}{extension}")


def make_dataset(root: Path, participants: list[dict[str, str]] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "test", "BIDSVersion": "1.8.0"}))
    if participants is not None:
        pd.DataFrame(participants).to_csv(root / "participants.tsv", sep="\t", index=False)
    return root


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Two complete pairs, one control with three monthly sessions, participants.tsv with splits."""
    root = make_dataset(
        tmp_path / "ds",
        [
            {"participant_id": "sub-P001", "split": "train", "protocol": "A"},
            {"participant_id": "sub-P002", "split": "test", "protocol": "n/a"},
            {"participant_id": "sub-C01", "split": "n/a", "protocol": "n/a"},
        ],
    )
    for subject in ("P001", "P002"):
        add_session(root, subject, "clinical")
        add_session(root, subject, "research", extension=".nii")
    for month in ("month00", "month01", "month02"):
        add_session(root, "C01", month)
    return root


def test_discovers_pairs_and_longitudinal(dataset: Path) -> None:
    inv = discover(dataset)
    assert isinstance(inv, Inventory)
    assert inv.problems == []
    assert inv.subjects == ["P001", "P002"]
    pair = inv.pair("P001")
    assert pair.clinical.session == "clinical"
    assert pair.research.session == "research"
    assert set(pair.clinical.images) == set(SEQUENCES)
    flair = dataset / "sub-P001" / "ses-clinical" / "anat" / "sub-P001_ses-clinical_FLAIR.nii.gz"
    assert pair.clinical.images["FLAIR"] == flair
    assert pair.research.images["T1w"].name == "sub-P001_ses-research_T1w.nii"  # .nii accepted
    assert all(p.is_file() for p in pair.clinical.images.values())
    assert inv.pair("sub-P002").subject == "P002"
    with pytest.raises(KeyError, match="C01"):
        inv.pair("C01")

    assert [c.subject for c in inv.longitudinal] == ["C01"]
    control = inv.longitudinal[0]
    assert [s.session for s in control.sessions] == ["month00", "month01", "month02"]
    assert all(set(s.images) == set(SEQUENCES) for s in control.sessions)


def test_participants_split_and_protocol(dataset: Path) -> None:
    inv = discover(dataset)
    assert inv.pair("P001").split == "train"
    assert inv.pair("P001").protocol == "A"
    assert inv.pair("P002").split == "test"
    assert inv.pair("P002").protocol is None
    assert [p.subject for p in inv.by_split("train")] == ["P001"]
    assert [p.subject for p in inv.by_split("test")] == ["P002"]
    assert inv.by_split("validation") == []
    with pytest.raises(ValueError, match="'valid'"):
        inv.by_split("valid")


def test_to_dataframe(dataset: Path) -> None:
    frame = discover(dataset).to_dataframe()
    # 2 pairs x 2 sessions x 3 sequences + 1 control x 3 sessions x 3 sequences
    assert len(frame) == 12 + 9
    assert set(frame["status"]) == {"ok"}
    assert frame["used"].all()
    row = frame[(frame.subject == "P001") & (frame.session == "clinical") & (frame.sequence == "T2w")].iloc[0]
    assert row["role"] == "clinical"
    assert row["path"].endswith("sub-P001_ses-clinical_T2w.nii.gz")
    assert row["split"] == "train"


def test_missing_sequence_message(dataset: Path) -> None:
    add_session(dataset, "P007", "clinical", sequences=["T1w", "T2w"])
    add_session(dataset, "P007", "research")
    inv = discover(dataset)
    assert "P007" not in inv.subjects
    assert any(
        "sub-P007: session 'clinical' lacks FLAIR (expected sub-P007_ses-clinical_FLAIR.nii[.gz]" in p
        for p in inv.problems
    ), inv.problems
    frame = inv.to_dataframe()
    flair = frame[(frame.subject == "P007") & (frame.sequence == "FLAIR") & (frame.session == "clinical")]
    assert flair["status"].tolist() == ["missing"]
    assert not frame[frame.subject == "P007"]["used"].any()


def test_strict_raises_listing_all_problems(dataset: Path) -> None:
    add_session(dataset, "P007", "clinical", sequences=["T1w"])
    add_session(dataset, "P007", "research")
    with pytest.raises(BIDSInputError) as info:
        discover(dataset, strict=True)
    message = str(info.value)
    assert "lacks T2w" in message
    assert "lacks FLAIR" in message
    assert "2 problem(s)" in message


def test_missing_session(dataset: Path) -> None:
    add_session(dataset, "P008", "research")
    inv = discover(dataset)
    assert "P008" not in inv.subjects
    assert any(p.startswith("sub-P008: missing session 'clinical'") for p in inv.problems), inv.problems
    frame = inv.to_dataframe()
    assert set(frame[(frame.subject == "P008") & (frame.session == "clinical")]["status"]) == {"missing"}


def test_custom_session_labels(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds")
    add_session(root, "X1", "lowres")
    add_session(root, "X1", "hires")
    add_session(root, "C1", "visit1")
    add_session(root, "C1", "visit2")
    inv = discover(root, clinical="lowres", research="hires", longitudinal_prefix="visit")
    assert inv.subjects == ["X1"]
    assert inv.pair("X1").clinical.session == "lowres"
    assert [s.session for s in inv.longitudinal[0].sessions] == ["visit1", "visit2"]
    # Without participants.tsv: a warning, splits assigned from the fractions, strict still passes.
    assert len(inv.problems) == 1
    assert inv.problems[0].startswith("warning:")
    assert "participants.tsv" in inv.problems[0]
    assert inv.errors == []
    assert inv.pair("X1").split in FRACTIONS
    discover(root, clinical="lowres", research="hires", longitudinal_prefix="visit", strict=True)


def test_longitudinal_sessions_ordered_naturally(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds")
    for month in ("month10", "month2", "month00"):
        add_session(root, "C1", month)
    inv = discover(root)
    assert [s.session for s in inv.longitudinal[0].sessions] == ["month00", "month2", "month10"]


def test_incomplete_longitudinal_subject_left_out(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds")
    add_session(root, "C1", "month00")
    add_session(root, "C1", "month01", sequences=["T1w", "FLAIR"])
    inv = discover(root)
    assert inv.longitudinal == []
    assert any("sub-C1: session 'month01' lacks T2w" in p for p in inv.problems)


def test_duplicate_candidates(dataset: Path) -> None:
    add_session(dataset, "P001", "clinical", sequences=["T1w"], entities="acq-mprage_")
    inv = discover(dataset)
    assert "P001" not in inv.subjects
    [problem] = [p for p in inv.problems if "P001" in p]
    assert "sub-P001: session 'clinical'" in problem
    assert "sub-P001_ses-clinical_T1w.nii.gz" in problem
    assert "sub-P001_ses-clinical_acq-mprage_T1w.nii.gz" in problem
    assert "bids_filters" in problem
    frame = inv.to_dataframe()
    row = frame[(frame.subject == "P001") & (frame.session == "clinical") & (frame.sequence == "T1w")]
    assert row["status"].tolist() == ["ambiguous"]
    assert row["n_candidates"].tolist() == [2]


def test_duplicate_runs(dataset: Path) -> None:
    for session in ("clinical", "research"):
        for run in ("run-1_", "run-2_"):
            add_session(dataset, "P002", session, sequences=["FLAIR"], entities=run)
    inv = discover(dataset)
    assert inv.subjects == ["P001"]
    assert any("sub-P002: session 'research' has 3 candidate FLAIR images" in p for p in inv.problems)
    inv = discover(dataset, filters={"FLAIR": {"run": 2}})
    # Filters apply to every subject: P001's FLAIR has no run entity, so P001 now lacks FLAIR.
    assert inv.subjects == ["P002"]
    assert inv.pair("P002").research.images["FLAIR"].name == "sub-P002_ses-research_run-2_FLAIR.nii.gz"
    assert any("sub-P001: session 'clinical' lacks FLAIR matching bids_filters" in p for p in inv.problems)


def test_filters_resolve_duplicates(dataset: Path) -> None:
    for subject in ("P001", "P002"):
        add_session(dataset, subject, "clinical", sequences=["T1w"], entities="acq-mprage_")
        add_session(dataset, subject, "research", sequences=["T1w"], entities="acq-mprage_")
    assert discover(dataset).subjects == []

    for filters in ({"T1w": {"acquisition": "mprage"}}, {"T1w": {"acq": "mprage"}}):
        inv = discover(dataset, filters=filters)
        assert inv.subjects == ["P001", "P002"], inv.problems
        assert inv.pair("P001").clinical.images["T1w"].name == "sub-P001_ses-clinical_acq-mprage_T1w.nii.gz"
        # Filters apply to their sequence only.
        assert inv.pair("P001").clinical.images["T2w"].name == "sub-P001_ses-clinical_T2w.nii.gz"

    # null selects the file without the entity.
    inv = discover(dataset, filters={"T1w": {"acquisition": None}})
    assert inv.pair("P002").research.images["T1w"].name == "sub-P002_ses-research_T1w.nii"


def test_invalid_filters(dataset: Path) -> None:
    with pytest.raises(BIDSInputError, match=r"bids_filters.*'PD'"):
        discover(dataset, filters={"PD": {"acquisition": "x"}})
    with pytest.raises(BIDSInputError, match=r"bids_filters\.T1w"):
        discover(dataset, filters={"T1w": {"nonsense": "x"}})
    with pytest.raises(BIDSInputError, match="'suffix'"):
        discover(dataset, filters={"T1w": {"suffix": "T2w"}})


def test_invalid_subject_label(dataset: Path) -> None:
    add_session(dataset, "P_009", "clinical")
    add_session(dataset, "P_009", "research")
    inv = discover(dataset)
    assert inv.subjects == ["P001", "P002"]
    assert any("sub-P_009" in p and "invalid subject label 'P_009'" in p for p in inv.problems)


def test_invalid_subject_label_does_not_leak_into_similar_subject(tmp_path: Path) -> None:
    # pybids' entity regex would read sub-P_1 as subject "P"; a real sub-P must not pick up its files.
    root = make_dataset(tmp_path / "ds")
    for subject in ("P", "P_1"):
        add_session(root, subject, "clinical")
        add_session(root, subject, "research")
    inv = discover(root)
    assert inv.subjects == ["P"]
    assert inv.pair("P").clinical.images["T1w"].name == "sub-P_ses-clinical_T1w.nii.gz"


def test_derivatives_and_sourcedata_ignored(dataset: Path) -> None:
    for sub in ("derivatives/pipeline", "sourcedata"):
        add_session(dataset / sub, "P001", "clinical")
    assert discover(dataset).problems == []


def test_participants_split_invalid_value(dataset: Path) -> None:
    table = pd.read_csv(dataset / "participants.tsv", sep="\t", dtype=str)
    table.loc[table.participant_id == "sub-P002", "split"] = "holdout"
    table.to_csv(dataset / "participants.tsv", sep="\t", index=False)
    inv = discover(dataset)
    assert inv.subjects == ["P001"]
    assert any("sub-P002" in p and "'holdout'" in p for p in inv.problems), inv.problems


def test_split_assigned_when_not_declared(dataset: Path) -> None:
    add_session(dataset, "P003", "clinical")
    add_session(dataset, "P003", "research")
    inv = discover(dataset, split_seed=7)
    expected = assign_split(["P003"], FRACTIONS, 7)["P003"]
    assert inv.pair("P003").split == expected
    assert any(p.startswith("warning:") and "sub-P003" in p for p in inv.problems)
    assert inv.errors == []
    # Declared splits win over the fractions.
    inv = discover(dataset, split_fractions={"validation": 1.0})
    assert inv.pair("P001").split == "train"
    assert inv.pair("P003").split == "validation"
    assert inv.pair("P001").split_declared and not inv.pair("P003").split_declared


def test_split_column_configurable(dataset: Path) -> None:
    inv = discover(dataset, split_column="fold", split_fractions={"test": 1.0})
    assert {p.split for p in inv.pairs} == {"test"}


def test_read_participants(dataset: Path, tmp_path: Path) -> None:
    frame = read_participants(dataset)
    assert list(frame.index) == ["P001", "P002", "C01"]
    assert frame.loc["P001", "split"] == "train"
    assert pd.isna(frame.loc["P002", "protocol"])
    empty = read_participants(tmp_path)
    assert empty.empty


@pytest.mark.parametrize(
    "content",
    ["", "subject\tsplit\nsub-A\ttrain\n", "participant_id\tsplit\nsub-A\ttrain\textra\tmore\n",
     "participant_id\tsplit\nsub-A\ttrain\nsub-A\ttest\n"],
)  # fmt: skip
def test_read_participants_malformed(tmp_path: Path, content: str) -> None:
    (tmp_path / "participants.tsv").write_text(content)
    with pytest.raises(BIDSInputError, match=r"participants\.tsv"):
        read_participants(tmp_path)


def test_assign_split_deterministic_and_stable() -> None:
    subjects = [f"P{i:03d}" for i in range(200)]
    first = assign_split(subjects, FRACTIONS, 2022)
    assert first == assign_split(list(reversed(subjects)), FRACTIONS, 2022)
    assert set(first.values()) == set(FRACTIONS)
    counts = pd.Series(first).value_counts(normalize=True)
    assert abs(counts["train"] - 0.66) < 0.12
    # Adding subjects never moves existing ones.
    more = assign_split([*subjects, *(f"N{i}" for i in range(50))], FRACTIONS, 2022)
    assert {s: more[s] for s in subjects} == first
    # Each subject depends only on (seed, label).
    assert assign_split(["P005"], FRACTIONS, 2022) == {"P005": first["P005"]}
    # A different seed gives a different split.
    assert assign_split(subjects, FRACTIONS, 1) != first


def test_assign_split_known_values() -> None:
    # Guards against accidental changes of the hash (which would silently reshuffle every dataset).
    result = assign_split(["P001", "P002", "P003", "C01"], FRACTIONS, 2022)
    assert result == assign_split(["C01", "P003", "P002", "P001"], {**FRACTIONS}, 2022)
    assert result == EXPECTED_SPLITS


EXPECTED_SPLITS = {"P001": "train", "P002": "test", "P003": "train", "C01": "validation"}


@pytest.mark.parametrize(
    "fractions",
    [
        {"train": 0.5, "test": 0.4},
        {"train": 0.7, "validation": 0.2, "test": 0.2},
        {},
        {"train": 1.2, "test": -0.2},
    ],
)
def test_assign_split_fraction_validation(fractions: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="fraction"):
        assign_split(["A"], fractions, 1)


def test_assign_split_tolerance_and_zero_fraction() -> None:
    fractions = {"train": 0.6, "validation": 0.0, "test": 0.4 - 5e-7}
    result = assign_split([f"S{i}" for i in range(100)], fractions, 3)
    assert "validation" not in result.values()


def test_discover_rejects_unknown_split_names(dataset: Path) -> None:
    with pytest.raises(ValueError, match="holdout"):
        discover(dataset, split_fractions={"train": 0.5, "holdout": 0.5})


def test_bad_root(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(BIDSInputError, match="nope"):
        discover(missing)
    (tmp_path / "nodesc").mkdir()
    with pytest.raises(BIDSInputError, match=r"nodesc.*dataset_description\.json"):
        discover(tmp_path / "nodesc")
    assert issubclass(BIDSInputError, ValueError)
