"""The per-session preprocessing chain's file layout and transform plan (brainsr.preprocess.layout, .chain)."""

from __future__ import annotations

import pytest

from brainsr.config import validate_config
from brainsr.paths import sidecar
from brainsr.preprocess.chain import session_keys
from brainsr.preprocess.layout import PrepLayout

PRE = validate_config({})["preprocess"]


@pytest.mark.parametrize(
    ("preps", "keys"),
    [
        (["affinelinear"], ["affinemi", "affinecr"]),  # CR starts from the MI estimate
        (["warp"], ["affinemi", "warp"]),  # the warp starts from the MI affine
        (["affinesinc"], ["affinemi"]),
        (["rigidbspline", "rigidlinear"], ["rigidmi", "rigidcr"]),
        (
            ["rigidlinear", "rigidsinc", "affinelinear", "affinesinc", "affinebspline", "warp"],
            ["rigidmi", "rigidcr", "affinemi", "affinecr", "warp"],
        ),
    ],
)
def test_session_keys_lists_each_transform_once_after_its_start(preps: list[str], keys: list[str]) -> None:
    assert session_keys(preps, PRE) == keys


def test_session_keys_refuses_an_unknown_prep() -> None:
    with pytest.raises(ValueError, match="unknown prep 'affinecubic'"):
        session_keys(["affinecubic"], PRE)


def test_layout_names_follow_bids_derivatives() -> None:
    lay = PrepLayout("out/preprocess", "MNI152NLin2009cSym")
    anat = "out/preprocess/sub-P001/ses-clinical/anat/sub-P001_ses-clinical"
    assert lay.brain("P001", "clinical", "FLAIR") == f"{anat}_desc-brain_FLAIR.nii.gz"
    assert lay.mask("P001", "clinical") == f"{anat}_space-T1w_desc-brain_mask.nii.gz"
    assert lay.seq_xfm("P001", "clinical", "T2w") == f"{anat}_from-T2w_to-T1w_mode-image_xfm.mat"
    assert lay.tpl_xfm("P001", "clinical", "warp", inverse=True) == (
        f"{anat}_from-MNI152NLin2009cSym_to-T1w_mode-image_desc-warp_xfm.nii.gz"
    )
    assert lay.image("P001", "clinical", "affinelinear", "T1w") == (
        f"{anat}_space-MNI152NLin2009cSym_desc-affinelinear_T1w.nii.gz"
    )
    assert lay.qc("P001", "clinical", ".png") == (
        "out/preprocess/sub-P001/ses-clinical/figures/sub-P001_ses-clinical_space-MNI152NLin2009cSym_desc-alignment_qc.png"
    )
    assert sidecar(lay.brain("P001", "clinical", "T1w")) == f"{anat}_desc-brain_T1w.json"


def test_session_outputs_counts_every_file_once() -> None:
    lay = PrepLayout("r", "MNI")
    out = lay.session_outputs("{subject}", "{session}", ["affinelinear", "warp"], ["affinemi", "affinecr", "warp"])
    files = [f for group in out.values() for f in group]
    assert len(files) == len(set(files))
    # 3 brains + 3 sidecars, mask, 2 sequence transforms, 3 template transforms x 2 directions, FLIRT copies of
    # the 4 linear ones (2 sequence, affinemi, affinecr), 2 preps x (3 images + 3 sidecars + mask), QC table and figure
    assert len(files) == 6 + 1 + 2 + 6 + 4 + 14 + 2
    assert (
        lay.flirt("P", "c", key="affinecr")
        == "r/sub-P/ses-c/anat/sub-P_ses-c_from-T1w_to-MNI_mode-image_desc-affinecr_xfm.flirt.mat"
    )
    assert (
        lay.flirt("P", "c", seq="FLAIR") == "r/sub-P/ses-c/anat/sub-P_ses-c_from-FLAIR_to-T1w_mode-image_xfm.flirt.mat"
    )
    assert all("{subject}" in f and "{session}" in f for f in files)
