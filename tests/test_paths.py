"""Tests for brainsr.paths: BIDS path construction and parsing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from brainsr.paths import ENTITY_ORDER, bids, label_ok, parse_bids_name


def test_session_level_path() -> None:
    path = bids("data", subject="P001", session="clinical", datatype="anat", suffix="T1w")
    expected = os.path.join("data", "sub-P001", "ses-clinical", "anat", "sub-P001_ses-clinical_T1w.nii.gz")
    assert path == expected


def test_entity_order_independent_of_keyword_order() -> None:
    path = bids(
        "out",
        desc="brain",
        space="MNI152NLin2009cSym",
        rec="sr",
        acq="axial",
        run="1",
        subject="P001",
        session="research",
        datatype="anat",
        suffix="FLAIR",
    )
    assert os.path.basename(path) == (
        "sub-P001_ses-research_acq-axial_rec-sr_run-1_space-MNI152NLin2009cSym_desc-brain_FLAIR.nii.gz"
    )


def test_transform_name_uses_from_to_mode() -> None:
    path = bids(
        "out",
        subject="P001",
        session="clinical",
        datatype="anat",
        mode="image",
        to="MNI152NLin2009cSym",
        from_="T1w",
        suffix="xfm",
        extension=".h5",
    )
    assert os.path.basename(path) == "sub-P001_ses-clinical_from-T1w_to-MNI152NLin2009cSym_mode-image_xfm.h5"


def test_entity_order_constant_matches_bids() -> None:
    assert ENTITY_ORDER[:2] == ("sub", "ses")
    assert ENTITY_ORDER.index("acq") < ENTITY_ORDER.index("rec") < ENTITY_ORDER.index("run")
    assert ENTITY_ORDER.index("space") < ENTITY_ORDER.index("label") < ENTITY_ORDER.index("from")
    assert ENTITY_ORDER[-1] == "desc"


def test_subject_level_and_group_level() -> None:
    subject_level = bids("out", subject="P001", datatype="anat", desc="mean", suffix="T1w")
    assert subject_level == os.path.join("out", "sub-P001", "anat", "sub-P001_desc-mean_T1w.nii.gz")
    no_datatype = bids("out", subject="P001", suffix="report", extension=".html")
    assert no_datatype == os.path.join("out", "sub-P001", "sub-P001_report.html")
    group = bids("out", desc="metrics", suffix="table", extension=".tsv")
    assert group == os.path.join("out", "desc-metrics_table.tsv")


def test_flat_layout_without_directories() -> None:
    path = bids(
        Path("out"),
        subject="P1",
        session="clinical",
        suffix="T2w",
        include_subject_dir=False,
        include_session_dir=False,
    )
    assert path == os.path.join("out", "sub-P1_ses-clinical_T2w.nii.gz")


def test_none_entities_are_skipped() -> None:
    path = bids("out", subject="A", session=None, acq=None, desc=None, suffix="T1w")
    assert path == os.path.join("out", "sub-A", "sub-A_T1w.nii.gz")


def test_placeholders_kept_verbatim() -> None:
    path = bids(
        "{root}",
        subject="{subject}",
        session="{session}",
        datatype="anat",
        desc="{desc}",
        suffix="{sequence}",
        extension="{ext}",
    )
    name = "sub-{subject}_ses-{session}_desc-{desc}_{sequence}{ext}"
    assert path == os.path.join("{root}", "sub-{subject}", "ses-{session}", "anat", name)
    # Snakemake wildcards with constraints and escaped braces are placeholders too.
    constrained = bids("r", subject="{subject,[A-Za-z0-9]+}", suffix="T1w")
    assert "sub-{subject,[A-Za-z0-9]+}_T1w.nii.gz" in constrained
    assert bids("r", subject="P{num}", suffix="T1w").endswith("sub-P{num}_T1w.nii.gz")
    assert bids("r", subject="{{subject}}", suffix="T1w").endswith("sub-{{subject}}_T1w.nii.gz")


def test_pure_string_formatting(tmp_path: Path) -> None:
    missing = tmp_path / "does" / "not" / "exist"
    path = bids(missing, subject="A", session="b", datatype="anat", suffix="T1w")
    assert path.startswith(str(missing))
    assert not missing.exists()


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"subject": "P_001"}, "'sub'"),
        ({"session": "clin-1"}, "'ses'"),
        ({"desc": "bad label"}, "'desc'"),
        ({"acq": ""}, "'acq'"),
        ({"subject": "a_{x}"}, "'sub'"),
    ],
)
def test_invalid_labels_raise(kwargs: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named) as info:
        bids("out", suffix="T1w", **kwargs)
    assert repr(next(iter(kwargs.values()))) in str(info.value)


def test_unknown_entity_raises_naming_key() -> None:
    with pytest.raises(ValueError, match="'foo'"):
        bids("out", subject="A", suffix="T1w", foo="x")
    with pytest.raises(ValueError, match="subject="):
        bids("out", suffix="T1w", sub="A")


def test_invalid_suffix_and_extension() -> None:
    with pytest.raises(ValueError, match="suffix"):
        bids("out", subject="A", suffix="T1_w")
    with pytest.raises(ValueError, match="extension"):
        bids("out", subject="A", suffix="T1w", extension="nii.gz")


def test_label_ok() -> None:
    assert label_ok("P001")
    assert label_ok("month00")
    assert not label_ok("")
    assert not label_ok("P-001")
    assert not label_ok("P_001")
    assert not label_ok("{subject}")
    assert not label_ok("é1")


def test_parse_bids_name() -> None:
    parsed = parse_bids_name("/x/sub-P1/ses-research/anat/sub-P1_ses-research_acq-ax_desc-brain_FLAIR.nii.gz")
    assert parsed == {
        "subject": "P1",
        "session": "research",
        "acq": "ax",
        "desc": "brain",
        "suffix": "FLAIR",
        "extension": ".nii.gz",
        "datatype": "anat",
    }
    xfm = parse_bids_name("sub-P1_from-T1w_to-MNI_mode-image_xfm.h5")
    assert xfm["from"] == "T1w"
    assert xfm["suffix"] == "xfm"
    assert xfm["extension"] == ".h5"
    assert "datatype" not in xfm


@pytest.mark.parametrize(
    "kwargs",
    [
        {"subject": "P1", "session": "clinical", "datatype": "anat", "suffix": "T1w"},
        {"subject": "P1", "session": "clinical", "datatype": "anat", "from_": "T1w", "to": "MNI",
         "mode": "image", "suffix": "xfm", "extension": ".h5"},
        {"subject": "C2", "datatype": "anat", "space": "MNI152NLin2009cSym", "desc": "mean", "suffix": "T2w"},
        {"subject": "C2", "suffix": "report", "extension": ".html"},
        {"desc": "metrics", "suffix": "table", "extension": ".tsv"},
        {"subject": "P1", "session": "research", "datatype": "anat", "label": "WMH", "suffix": "mask",
         "extension": ".nii"},
    ],
)  # fmt: skip
def test_round_trip(kwargs: dict[str, str]) -> None:
    path = bids("root", **kwargs)
    assert bids("root", **parse_bids_name(path)) == path


@pytest.mark.parametrize(
    "name",
    [
        "sub-A_ses-B_T1w_.nii.gz",
        "sub-A_bogus_T1w.nii.gz",
        "sub-A_foo-x_T1w.nii.gz",
        "sub-A_sub-B_T1w.nii",
        "sub-A_T1-w.nii",
        "",
    ],
)
def test_parse_rejects_malformed(name: str) -> None:
    with pytest.raises(ValueError):
        parse_bids_name(name)
