"""The run's layout (brainsr.workflow.layout): file names and job specs of a small synthetic run, by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from brainsr.config import validate_config
from brainsr.workflow.layout import (
    Cohort,
    LayoutError,
    RunLayout,
    cohort_settings,
    dataset_root,
    kv,
    log_path,
    truth_args,
)

TPL = "MNI152NLin2009cSym"
P = f"out/preprocess/sub-P003/ses-clinical/anat/sub-P003_ses-clinical_space-{TPL}"
R = f"out/preprocess/sub-P003/ses-research/anat/sub-P003_ses-research_space-{TPL}"
S = "out/superres/sub-P003/ses-clinical/anat/sub-P003_ses-clinical"
ANAT = "out/preprocess/sub-P001/ses-clinical/anat/sub-P001_ses-clinical"
E = "out/evaluate/sub-P003/ses-{ses}/anat/sub-P003_ses-{ses}_space-" + TPL


def small_config(**overrides: object) -> dict:
    """Three patients (one per split), one control seen at months 0 and 2; two experiments; affine + warp preps."""
    config = {
        "output_dir": "out",
        "simulate": {
            "n_patients": 3,
            "n_controls": 1,
            "control_months": [0, 2],
            "split_counts": {"train": 1, "validation": 1, "test": 1},
        },
        "preprocess": {"alignments": ["affine", "warp"], "build_variants": ["linear"], "grid_mm": 2.0},
        "superres": {"experiments": {"model0": {}, "wm": {"prep": "warp"}}, "run": ["model0", "wm"]},
        **overrides,
    }
    return validate_config(config)


SPLIT = {"P001": "train", "P002": "validation", "P003": "test"}


def small_cohort() -> Cohort:
    protocols = {"P001": "P1", "P002": "P2", "P003": "P3"}
    return Cohort(["P001", "P002", "P003"], ["C001"], protocols, {"C001": ["month00", "month02"]}, dict(SPLIT))


@pytest.fixture
def layout() -> RunLayout:
    return RunLayout(small_config(), small_cohort(), SPLIT)


def test_methods_preps_and_showcase(layout: RunLayout) -> None:
    assert layout.methods == ["model0", "wm", "interpaffinelinear", "interpwarp"]
    assert [layout.method_prep(m) for m in layout.methods] == ["affinelinear", "warp", "affinelinear", "warp"]
    assert layout.prep_labels() == ["affinelinear", "warp"]
    assert layout.showcase == "model0" and layout.showcase_baseline == "interpaffinelinear"
    assert layout.showcase_subject == "P003" and layout.sr_subjects == ["P003"]
    assert layout.preps_of("P003") == ["affinelinear", "warp"] and layout.preps_of("C001") == ["affinelinear"]
    assert layout.prep_roles() == {"evaluated": ["P003"], "training": ["P001", "P002"], "control": ["C001"]}


def test_showcase_fallbacks_and_errors() -> None:
    config = small_config(evaluate={"showcase": "interpwarp"})
    assert RunLayout(config, small_cohort(), SPLIT).showcase == "interpwarp"
    config = small_config(superres={"experiments": {"wm": {"prep": "warp"}}, "run": ["wm"], "baselines": ["warp"]})
    assert RunLayout(config, small_cohort(), SPLIT).showcase == "wm"  # no model0: the first experiment
    with pytest.raises(LayoutError, match=r"evaluate\.showcase 'unet' is not built"):
        RunLayout(small_config(evaluate={"showcase": "unet"}), small_cohort(), SPLIT)
    with pytest.raises(LayoutError, match=r"superres\.run names experiments that are not defined"):
        RunLayout(small_config(superres={"experiments": {"model0": {}}, "run": ["nope"]}), small_cohort(), SPLIT)


def test_without_training_subjects_only_baselines_are_built() -> None:
    layout = RunLayout(small_config(), small_cohort(), {"P001": "test", "P002": "test", "P003": "test"})
    assert layout.methods == ["interpaffinelinear", "interpwarp"] and layout.showcase == "interpaffinelinear"
    assert layout.notes == ["superres: no experiment is trained (the dataset has 0 train and 0 validation subjects)"]
    assert "sr_validation" not in layout.group


def test_input_and_preprocessing_names(layout: RunLayout) -> None:
    assert layout.session_images("C001", "month02") == {
        q: f"out/sourcedata/synthetic/sub-C001/ses-month02/anat/sub-C001_ses-month02_{q}.nii.gz"
        for q in ("T1w", "T2w", "FLAIR")
    }
    assert layout.all_prep_sessions()[-2:] == [("C001", "month00"), ("C001", "month02")]
    assert layout.template["image"] == f"out/preprocess/space-{TPL}_res-2_desc-brain_T1w.nii.gz"
    assert layout.lesion_prior == f"out/evaluate/space-{TPL}_res-2_label-lesion_probseg.nii.gz"
    outputs = layout.session_outputs(["warp"])
    assert outputs["tpl_xfm"][-1].endswith(
        f"sub-{{subject}}_ses-{{session}}_from-{TPL}_to-T1w_mode-image_desc-warp_xfm.nii.gz"
    )
    assert list(layout.group) == [
        "inventory", "cohort_figure", "cohort_quality", "cohort_summary", "prep_description", "prep_quality",
        "prep_gate", "prep_accuracy", "prep_accuracy_summary", "sr_description", "sr_validation",
    ]  # fmt: skip
    assert layout.resources_for("train") == {"mem_mb": 8000, "runtime": 240}


def test_superres_names_and_specs(layout: RunLayout) -> None:
    assert layout.model_file("wm", "summary") == "out/superres/models/wm/model.json"
    assert layout.sr_image("P003", "model0", "T2w") == f"{S}_space-{TPL}_desc-model0_T2w.nii.gz"
    assert layout.sr_image("P003", "model0", "T2w", space=False) == f"{S}_desc-model0_T2w.nii.gz"
    assert layout.sr_explain("P003", "interpwarp") == f"{S}_desc-interpwarp_explain.npz"
    inputs = layout.infer_inputs("P003", "interpaffinelinear")
    assert "model" not in inputs and inputs["mask"] == f"{P}_desc-affinelinear_mask.nii.gz"
    assert inputs["xfm"][0].endswith(f"_from-{TPL}_to-T1w_mode-image_desc-affinecr_xfm.mat")
    assert layout.infer_inputs("P003", "wm")["model"] == "out/superres/models/wm/model.pt"
    native = json.loads(layout.infer_native_json("P003", "wm"))
    assert native["T1w"]["invert"] == [False] and native["FLAIR"]["invert"] == [True, False]
    assert native["FLAIR"]["transforms"][0].endswith("sub-P003_ses-clinical_from-FLAIR_to-T1w_mode-image_xfm.mat")
    spec = json.loads(layout.train_spec("model0"))
    assert [e["subject"] for e in spec["train"]] == ["P001"] and [e["subject"] for e in spec["validation"]] == ["P002"]
    assert spec["settings"]["prep"] == "affinelinear" and spec["sequences"] == ["T1w", "T2w", "FLAIR"]
    assert spec["intensity"]["rescale"] == "wm" and spec["qc_gate"]["table"] == layout.group["prep_gate"]
    assert len(layout.sr_outputs("P003", "wm")) == 3 * 4 + 1
    # a QC-gate override changes the training spec only when it names a training or validation subject
    gated = RunLayout(small_config(preprocess={"qc_gate": {"override": {"P003": "fail"}}}), small_cohort(), SPLIT)
    assert gated.train_spec("model0") == layout.train_spec("model0")
    assert json.loads(gated.group_spec())["qc_gate"]["override"] == {"P003": "fail"}
    gated = RunLayout(small_config(preprocess={"qc_gate": {"override": {"P002": "pass"}}}), small_cohort(), SPLIT)
    assert json.loads(gated.train_spec("model0"))["qc_gate"]["override"] == {"P002": "pass"}


def test_scan_sets_and_their_files(layout: RunLayout) -> None:
    assert layout.scan_sets() == [
        ("P003", "clinical", "model0"), ("P003", "clinical", "wm"), ("P003", "clinical", "interpaffinelinear"),
        ("P003", "clinical", "interpwarp"), ("P003", "research", "affinelinear"), ("P003", "research", "warp"),
        ("C001", "month00", "affinelinear"), ("C001", "month02", "affinelinear"),
    ]  # fmt: skip
    files = layout.scan_set_inputs("P003", "clinical", "wm")
    assert files["images"] == [f"{S}_space-{TPL}_desc-wm_{q}.nii.gz" for q in ("T1w", "T2w", "FLAIR")]
    assert files["tissues"] == E.format(ses="research") + "_label-T1tissue_desc-warp_dseg.nii.gz"
    assert files["reference"] == E.format(ses="research") + "_desc-warp_dseg.nii.gz"
    assert files["lookup"] == "out/sourcedata/synthetic/derivatives/groundtruth/desc-tissue_dseg.tsv"
    assert "truth" not in layout.scan_set_inputs("C001", "month02", "affinelinear")
    # the ground truth reaches the scan set's grid through the transform its prep resampled with (wm: warp prep)
    gt = "out/sourcedata/synthetic/derivatives/groundtruth/sub-P003"
    assert files["truth"] == f"{gt}/ses-clinical/anat/sub-P003_ses-clinical_space-{TPL}_desc-tissue_dseg.nii.gz"
    assert files["truth_chain"] == [
        "out/preprocess/sub-P003/ses-clinical/anat/sub-P003_ses-clinical_from-T1w_to-MNI152NLin2009cSym_mode-image_"
        "desc-warp_xfm.nii.gz"
    ]
    assert files["truth_pose"] == f"{gt}/ses-clinical/anat/sub-P003_ses-clinical_from-subject_to-T1w_mode-image_xfm.txt"
    assert files["truth_field"] == f"{gt}/sub-P003_from-subject_to-{TPL}_mode-image_xfm.nii.gz"
    assert truth_args({**files, "truth_chain": ["a.mat", "b.nii.gz"]}).split() == [
        "--truth", files["truth"], "--lookup", files["lookup"], "--truth-chain", "a.mat", "b.nii.gz",
        "--truth-pose", files["truth_pose"], "--truth-field", files["truth_field"],
    ]  # fmt: skip
    assert truth_args(layout.scan_set_inputs("C001", "month02", "affinelinear")) == ""
    assert list(layout.scan_set_outputs("research")) == [
        "tissues", "tissue_volumes", "quality", "dseg", "volumes", "agreement"
    ]  # fmt: skip
    assert re_fullmatch(layout.month_pattern, "month02") and not re_fullmatch(layout.month_pattern, "research")


def re_fullmatch(pattern: str, text: str) -> bool:
    import re

    return re.fullmatch(pattern, text) is not None


def test_report_specs(layout: RunLayout) -> None:
    spec = json.loads(layout.group_spec())
    assert spec["figure_methods"] == ["interpaffinelinear", "model0"]  # baseline, then Table 1's built models
    assert spec["controls"] == {"C001": {"month00": 0, "month02": 2}}
    assert spec["subjects"] == {"P003": "P3"} and spec["models"] == {
        "model0": "out/superres/models/model0/model.json",
        "wm": "out/superres/models/wm/model.json",
    }
    figures = layout.subject_figure_spec()
    assert list(figures["segmentations"]) == ["research", "interpolated (interpaffinelinear)", "model0"]
    assert figures["images"]["FLAIR"]["input"] == f"{P}_desc-affinelinear_FLAIR.nii.gz"
    assert figures["mask"] == f"{R}_desc-affinelinear_mask.nii.gz"
    rating = layout.rating_spec()
    assert rating["P003"]["upsampled"]["T1w"] == f"{S}_space-{TPL}_desc-model0_T1w.nii.gz"
    assert layout.rating_json() == json.dumps(rating, sort_keys=True)
    targets = layout.all_eval_targets()
    assert targets[-2:] == ["out/rating/sheet.csv", "out/rating_key/key.csv"]
    assert layout.report_table_file("table1") == "out/report/table1_architectures.html"


def test_accuracy_spec_names_the_ground_truth(layout: RunLayout) -> None:
    spec = layout.accuracy_spec("P001", "clinical")
    gt = "out/sourcedata/synthetic/derivatives/groundtruth/sub-P001"
    assert spec["template_to_subject_field"] == f"{gt}/sub-P001_from-{TPL}_to-subject_mode-image_xfm.nii.gz"
    assert (
        spec["poses"]["T2w"] == f"{gt}/ses-clinical/anat/sub-P001_ses-clinical_from-subject_to-T2w_mode-image_xfm.txt"
    )
    assert list(spec["chains"]) == ["affinelinear", "warp"]  # the training preps of model0 and wm
    assert spec["chains"]["warp"]["T1w"] == [f"{ANAT}_from-T1w_to-{TPL}_mode-image_desc-warp_xfm.nii.gz"]
    assert spec["chains"]["affinelinear"]["FLAIR"] == [
        f"{ANAT}_from-T1w_to-{TPL}_mode-image_desc-affinecr_xfm.mat",
        f"{ANAT}_from-FLAIR_to-T1w_mode-image_xfm.mat",
    ]
    # 4 single files, 3 poses, raw, corrected and truth images, and the 4 distinct transforms of the chains
    assert len(layout.accuracy_files(spec)) == 4 + 4 * 3 + 4


def test_a_bids_cohort() -> None:
    def session(label: str) -> SimpleNamespace:
        return SimpleNamespace(session=label, images={q: f"/data/{label}_{q}.nii" for q in ("T1w", "T2w", "FLAIR")})

    pair = SimpleNamespace(
        subject="A", clinical=session("clinical"), research=session("research"), protocol=None, split="test",
        split_declared=True,
    )  # fmt: skip
    control = SimpleNamespace(subject="B", sessions=[session("v1"), session("v2")])
    inventory = SimpleNamespace(pairs=[pair], longitudinal=[control], subjects=["A"])
    cohort = Cohort.from_inventory(inventory)
    assert cohort.declared == {"A"} and cohort.protocols == {"A": "unknown"}
    layout = RunLayout(small_config(bids_dir="/data"), cohort, {"A": "test"})
    assert layout.all_sessions("B") == ["v1", "v2"] and layout.session_images("B", "v2")["T2w"] == "/data/v2_T2w.nii"
    assert "cohort_figure" not in layout.all_targets()
    with pytest.raises(LayoutError, match="sub-A has no session 'v9'"):
        layout.session_images("A", "v9")
    assert cohort_settings(None) == {"source": "bids"}


def test_small_helpers() -> None:
    assert log_path("report_tables") == "logs/report_tables/report_tables.log"
    assert log_path("superres_infer", subject="P1", method="m") == "logs/superres_infer/subject-P1_method-m.log"
    assert kv({"T1w": "a", "T2w": "b"}) == "T1w=a T2w=b"
    assert dataset_root("out/preprocess/sub-P1/ses-x/anat/f.nii.gz") == "out/preprocess"


def test_the_layout_imports_no_heavy_library() -> None:
    """Snakemake imports the layout whenever it parses the workflow: standard library only."""
    code = "import sys, brainsr.workflow.layout; print(sorted({'numpy', 'pandas', 'yaml', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
