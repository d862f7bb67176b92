"""The frozen split and its cohort record (brainsr.splits): planned at parse time, written only when a run starts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from brainsr.bids import BIDSInputError
from brainsr.splits import SplitSettingsError, freeze_splits, plan_splits, record_path


def _frozen(path: Path) -> dict[str, str]:
    table = pd.read_csv(path, sep="\t", dtype=str)
    return dict(zip(table["subject"], table["split"], strict=True))


def test_freeze_splits_written_once_new_subjects_join_test(tmp_path: Path) -> None:
    path = tmp_path / "out" / "splits.tsv"
    first = {"A": "train", "B": "validation", "C": "test"}
    split, notes = freeze_splits(first, path)
    assert split == first and notes == [] and _frozen(path) == first
    # a re-split (e.g. other fractions) does not move frozen subjects; a new one is a test subject
    split, notes = freeze_splits({"A": "test", "B": "validation", "C": "train", "D": "train"}, path)
    assert split == {"A": "train", "B": "validation", "C": "test", "D": "test"}
    assert notes == [
        "sub-A: kept the frozen split train (would now be test)",
        "sub-C: kept the frozen split test (would now be train)",
        "sub-D: new subject, not in splits.tsv: test",
    ]
    assert _frozen(path) == {**first, "D": "test"}  # D frozen too
    # a split declared in participants.tsv wins and is recorded; a subject gone from the data stays listed
    split, notes = freeze_splits({"A": "validation", "D": "test"}, path, declared={"A"})
    assert split == {"A": "validation", "D": "test"}
    assert notes == ["sub-A: split train -> validation (participants.tsv)"]
    assert _frozen(path) == {"A": "validation", "B": "validation", "C": "test", "D": "test"}
    mtime = path.stat().st_mtime_ns
    freeze_splits({"B": "train"}, path)
    assert path.stat().st_mtime_ns == mtime  # unchanged content: not rewritten


@pytest.mark.parametrize(
    ("content", "message"),
    [("subject\tfold\nA\ttrain\n", "expected the columns"), ("subject\tsplit\nA\tholdout\n", "invalid split for A")],
)
def test_freeze_splits_bad_file_names_it(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "splits.tsv"
    path.write_text(content)
    with pytest.raises(BIDSInputError, match=message) as info:
        freeze_splits({"A": "train"}, path)
    assert str(path) in str(info.value)
    with pytest.raises(ValueError, match="new_split"):
        freeze_splits({"A": "train"}, tmp_path / "other.tsv", new_split="holdout")


SETTINGS = {"seed": 2022, "research_voxel_mm": 1.0, "subjects": {"A": {"protocol": "P1"}, "B": {"protocol": "P2"}}}


def test_plan_writes_nothing_until_asked(tmp_path: Path) -> None:
    path = tmp_path / "out" / "splits.tsv"
    plan = plan_splits({"A": "train", "B": "test"}, path, settings=SETTINGS)
    assert plan.split == {"A": "train", "B": "test"} and plan.stale
    assert not (tmp_path / "out").exists()  # parsing a workflow (dry run, --lint, --report) writes nothing
    plan.write()
    assert _frozen(path) == {"A": "train", "B": "test"}
    assert json.loads(record_path(path).read_text()) == SETTINGS
    again = plan_splits({"A": "train", "B": "test"}, path, settings=SETTINGS)
    assert not again.stale


def test_other_cohort_settings_stop_with_the_file_and_the_ways_out(tmp_path: Path) -> None:
    path = tmp_path / "splits.tsv"
    freeze_splits({"A": "train", "B": "test"}, path, settings=SETTINGS)
    other = {**SETTINGS, "research_voxel_mm": 2.0}
    with pytest.raises(SplitSettingsError) as info:
        plan_splits({"A": "train", "B": "test"}, path, settings=other)
    message = str(info.value)
    assert message.startswith(f"{record_path(path)}: the frozen split {path} was drawn for a cohort made with")
    assert "research_voxel_mm 1.0 (frozen) vs 2.0 (now)" in message
    assert "output_dir" in message and f"delete {path}" in message
    # a subject simulated with another protocol is a conflict too
    moved = {**SETTINGS, "subjects": {"A": {"protocol": "P3"}}}
    with pytest.raises(SplitSettingsError, match=re.escape('sub-A {"protocol": "P1"} (frozen) vs {"protocol": "P3"}')):
        plan_splits({"A": "train"}, path, settings=moved)


def test_growing_the_cohort_keeps_the_record(tmp_path: Path) -> None:
    path = tmp_path / "splits.tsv"
    freeze_splits({"A": "train", "B": "test"}, path, settings=SETTINGS)
    grown = {**SETTINGS, "subjects": {**SETTINGS["subjects"], "C": {"protocol": "P1"}}}
    split, notes = freeze_splits({"A": "train", "B": "test", "C": "train"}, path, settings=grown)
    assert split == {"A": "train", "B": "test", "C": "test"}
    assert notes == ["sub-C: new subject, not in splits.tsv: test"]
    assert json.loads(record_path(path).read_text())["subjects"] == grown["subjects"]
    # fewer subjects in the config: the record keeps everyone it has seen
    freeze_splits({"A": "train"}, path, settings={**SETTINGS, "subjects": {"A": {"protocol": "P1"}}})
    assert set(json.loads(record_path(path).read_text())["subjects"]) == {"A", "B", "C"}


def test_bad_record_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "splits.tsv"
    freeze_splits({"A": "train"}, path, settings=SETTINGS)
    record_path(path).write_text("{not json")
    with pytest.raises(BIDSInputError, match=f"{record_path(path)}: not valid JSON"):
        plan_splits({"A": "train"}, path, settings=SETTINGS)
