"""The Snakemake workflow: lint, config errors at start-up, CLI help, and an end-to-end run of the tiny preset."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import SNAKEMAKE, job_stats, snakemake, workflow_env

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "workflow" / "presets" / "tiny.yaml"
BRAINSR = shutil.which("brainsr") or str(Path(sys.executable).with_name("brainsr"))


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["simulate"],
        ["simulate", "subject"],
        ["simulate", "dataset"],
        ["cohort-qc"],
        ["inventory"],
        ["validate-config"],
        *[["preprocess", step] for step in ("template", "session", "accuracy", "tables")],
        ["train"],
        ["infer"],
        ["upsample"],
        ["superres-table"],
        *[["evaluate", what] for what in ("image", "quality", "agreement")],
        *[["segment", what] for what in ("tissues", "classes", "prior")],
        *[["report", what] for what in ("tables", "figures", "rating", "benchmarks")],
    ],
)
def test_cli_help(command):
    out = subprocess.run([BRAINSR, *command, "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "usage: brainsr" in out.stdout


def test_lint_is_clean(tmp_path):
    out = snakemake("--lint", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Lints for" not in out.stdout, out.stdout


def test_bad_config_key_stops_the_run_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("simulate:\n  n_patiens: 3\n")
    out = snakemake("-n", "--cores", "1", "--configfile", str(TINY), str(bad), cwd=tmp_path)
    assert out.returncode != 0
    assert "n_patiens" in out.stdout + out.stderr


def test_bad_config_value_names_the_key(tmp_path):
    out = snakemake("-n", "--cores", "1", "--configfile", str(TINY), "--config", "output_dir=[1]", cwd=tmp_path)
    assert out.returncode != 0
    assert "output_dir" in out.stdout + out.stderr


@pytest.mark.e2e
def test_tiny_preset_end_to_end(tiny_run):
    tmp_path, out = tiny_run.workdir, tiny_run.result
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-5000:]
    res = tmp_path / "results"
    bids_root = res / "sourcedata" / "synthetic"
    assert (bids_root / "dataset_description.json").is_file()
    images = sorted(bids_root.glob("sub-*/ses-*/anat/*.nii.gz"))
    assert len(images) == 3 * 2 * 3 + 1 * 2 * 3  # 3 patients x 2 sessions + 1 control x 2 months, 3 sequences
    for target in (
        "figures/cohort_protocols.png",
        "tables/cohort_quality.tsv",
        "tables/cohort_quality_summary.tsv",
        "tables/bids_inventory.tsv",
        "tables/preprocess_alignment_quality.tsv",
        "tables/preprocess_accuracy.tsv",
        "tables/preprocess_accuracy_summary.tsv",
        "preprocess/dataset_description.json",
    ):
        assert (res / target).stat().st_size > 0, target
    prep = res / "preprocess"
    for prep_label in ("affinelinear", "affinesinc", "warp"):
        for seq in ("T1w", "T2w", "FLAIR"):
            name = f"sub-P001_ses-clinical_space-MNI152NLin2009cSym_desc-{prep_label}_{seq}.nii.gz"
            assert (prep / "sub-P001" / "ses-clinical" / "anat" / name).is_file(), name
    assert len(list(prep.glob("sub-*/ses-*/figures/*_desc-alignment_qc.png"))) == 3 * 2 + 2
    assert len(list(prep.glob("sub-C001/ses-*/anat/*_space-*_desc-*_T1w.nii.gz"))) == 2  # controls: primary only
    accuracy = pd.read_csv(res / "tables" / "preprocess_accuracy.tsv", sep="\t")
    tre = accuracy[accuracy.metric == "tre_mean_mm"]
    # only the preps a consumer reads: the evaluated P001 (test) and P003 (validation) every prep, the training
    # subject P002 those of the experiments (affinelinear, warp; affinesinc only feeds a baseline), the control the
    # primary one
    assert len(tre) == (4 * 3 + 2 * 2 + 2 * 1) * 3 and tre.value.max() < 6.0, tre.value.describe()
    assert not list(prep.glob("sub-P002/ses-*/anat/*_desc-affinesinc_*")), "a prep nobody reads was built"
    dice = accuracy[accuracy.metric == "mask_dice"]
    assert len(dice) == 8 and dice.value.min() > 0.95, dice  # deepbet + T2w CSF (issue 20: Dice >= 0.95)
    volume = accuracy.pivot_table(index=["subject", "session"], columns="metric", values="value")
    error = 100 * (volume.mask_volume_ml / volume.gt_volume_ml - 1)
    assert error.abs().max() < 5.0, error  # every session within 5 % of the true intracranial volume
    assert not list(tmp_path.glob("tmp/*")), "ANTsPy left temporary files"
    gate = pd.read_csv(res / "tables" / "preprocess_qc_gate.tsv", sep="\t", dtype={"subject": str})
    assert set(gate.subject) == {"P002", "P003"} and (gate.final == "pass").all(), gate  # train and validation
    decisions = pd.read_csv(res / "tables" / "evaluation_qc_gate.tsv", sep="\t")
    assert len(decisions) == 8 and (decisions.status == "pass").all(), decisions  # every session, in the report
    assert len(pd.read_csv(res / "qc_gate.tsv", sep="\t")) == 8  # the frozen decisions, beside splits.tsv
    check_superres(res)
    check_evaluation(res, tmp_path)
    inv = pd.read_csv(res / "tables" / "bids_inventory.tsv", sep="\t")
    assert (inv["status"] == "ok").all()
    assert sorted(inv["subject"].unique()) == ["C001", "P001", "P002", "P003"]
    # every rule left a log; heavy rules a benchmark
    assert list((tmp_path / "logs" / "simulate_patient").glob("*.log"))
    assert list((tmp_path / "logs" / "benchmarks" / "simulate_patient").glob("*.tsv"))
    # nothing to do on a second run
    again = snakemake("-n", "--cores", "2", "--configfile", str(TINY), cwd=tmp_path)
    assert "Nothing to be done" in again.stdout + again.stderr

    # the split is frozen on the first run
    frozen = pd.read_csv(res / "splits.tsv", sep="\t")
    expected = {"P001": "test", "P002": "train", "P003": "validation"}
    assert dict(zip(frozen.subject, frozen.split, strict=True)) == expected
    record = json.loads((res / "splits.json").read_text())
    assert record["source"] == "synthetic" and record["research_voxel_mm"] == 2.0
    assert sorted(record["subjects"]) == ["P001", "P002", "P003"]
    # a preset switch in the same folder: the default preset's dry run stops, naming the file and the ways out,
    # and rewrites nothing (the tiny split would otherwise leave the default run one training subject)
    before = {p: p.stat().st_mtime_ns for p in (res / "splits.tsv", res / "splits.json")}
    switched = snakemake("-n", "--cores", "2", cwd=tmp_path)
    text = switched.stdout + switched.stderr
    assert switched.returncode != 0, text
    assert f"{Path('results') / 'splits.json'}: the frozen split results/splits.tsv was drawn for a cohort" in text
    assert "research_voxel_mm 2.0 (frozen) vs 1.0 (now)" in text and "output_dir" in text, text
    assert {p: p.stat().st_mtime_ns for p in before} == before
    # a new subject: only its own simulation and the group-level steps run. These split_counts alone would make
    # P001, P002 and P004 training subjects; the frozen split keeps P001-P003 and makes P004 a test subject, so
    # nothing retrains
    grown = tmp_path / "four_patients.yaml"
    grown.write_text("simulate:\n  n_patients: 4\n  split_counts: {train: 2, validation: 1, test: 1}\n")
    more = snakemake("-n", "--cores", "2", "--configfile", str(TINY), str(grown), cwd=tmp_path)
    text = more.stdout + more.stderr
    assert more.returncode == 0, text
    assert job_stats(text) == {
        "simulate_patient": 1,
        "simulate_dataset": 1,
        "bids_inventory": 1,
        "cohort_qc": 1,
        "preprocess_evaluated": 2,  # one job per session: affinecr, affinemi, warp; affinelinear, affinesinc, warp
        "preprocess_accuracy": 2,
        "preprocess_tables": 1,
        "superres_infer": len(TINY_METHODS),  # the new test subject, every method; no training
        # its evaluation, one job per scan set: every method, plus its research scans of the three preps; then the
        # group tables
        "evaluate_clinical": len(TINY_METHODS),
        "evaluate_research": 3,
        "report_tables": 1,
        "report_rating": 1,  # Figs. 5-12 show the first test subject: unchanged
        "all": 1,
    }, text
    assert "wildcards: subject=P004" in text
    assert "sub-P004: new subject, not in splits.tsv: test" in text

    # a hand-edited brain mask for one session reruns that session's preprocessing and what depends on it
    edited = res / "sourcedata" / "synthetic" / "derivatives" / "masks" / "sub-P002" / "ses-research" / "anat"
    edited.mkdir(parents=True)
    mask = prep / "sub-P002" / "ses-research" / "anat" / "sub-P002_ses-research_space-T1w_desc-brain_mask.nii.gz"
    shutil.copy(mask, edited / "sub-P002_ses-research_desc-brain_mask.nii.gz")
    manual = snakemake("-n", "--cores", "2", "--configfile", str(TINY), cwd=tmp_path)
    text = manual.stdout + manual.stderr
    assert job_stats(text) == {
        "preprocess_training": 1,  # the session, with the training subject's preps: affinelinear, warp
        "preprocess_accuracy": 1,
        "preprocess_tables": 1,
        "preprocess_qc_gate": 1,  # a training session changed; a new test subject does not rerun it
        # sub-P002 is the training subject: every experiment retrains, the two evaluated subjects are upsampled
        # and evaluated again (the interpolation baselines and research scans are untouched)
        "superres_train": len(TINY_EXPERIMENTS),
        "superres_infer": 2 * len(TINY_EXPERIMENTS),
        "superres_tables": 1,
        "evaluate_clinical": 2 * len(TINY_EXPERIMENTS),
        "report_tables": 1,
        "report_figures": 1,
        "report_rating": 1,
        "all": 1,
    }, text
    printed = snakemake("-n", "-p", "--cores", "2", "--configfile", str(TINY), cwd=tmp_path)
    assert "--manual-mask" in printed.stdout + printed.stderr
    shutil.rmtree(edited.parents[2])  # leave the shared run as it was


TINY_EXPERIMENTS = ("model0", "unet", "vit", "model0patches")
TINY_METHODS = (*TINY_EXPERIMENTS, "interpaffinelinear", "interpaffinesinc", "interpwarp")


def check_superres(res: Path) -> None:
    """Tiny-preset super-resolution outputs: models, histories, upsampled test scans on both grids."""
    import nibabel as nib
    import numpy as np

    table = pd.read_csv(res / "tables" / "superres_validation.tsv", sep="\t")
    assert sorted(table.experiment) == sorted(TINY_EXPERIMENTS)
    assert table.val_mae.notna().all() and (table.best_epoch >= 1).all()
    for exp in TINY_EXPERIMENTS:
        history = pd.read_csv(res / "superres" / "models" / exp / "history.tsv", sep="\t")
        assert list(history.epoch) == [1, 2], exp
        assert (res / "superres" / "models" / exp / "work" / "checkpoint.pt").is_file()
    anat = res / "superres" / "sub-P001" / "ses-clinical" / "anat"
    prep_anat = res / "preprocess" / "sub-P001" / "ses-clinical" / "anat"
    for method in TINY_METHODS:
        prep = {"model0patches": "warp"}.get(method, method.removeprefix("interp"))
        prep = "affinelinear" if prep in TINY_EXPERIMENTS else prep
        for seq in ("T1w", "T2w", "FLAIR"):
            tpl = nib.load(anat / f"sub-P001_ses-clinical_space-MNI152NLin2009cSym_desc-{method}_{seq}.nii.gz")
            ref = nib.load(prep_anat / f"sub-P001_ses-clinical_space-MNI152NLin2009cSym_desc-{prep}_{seq}.nii.gz")
            assert tpl.shape == ref.shape and np.allclose(tpl.affine, ref.affine), (method, seq)
            data = np.asarray(tpl.dataobj)
            assert 0 <= data.min() and data.max() <= 1 and data.max() > 0, (method, seq)
            native = nib.load(anat / f"sub-P001_ses-clinical_desc-{method}_{seq}.nii.gz")
            raw = nib.load(prep_anat / f"sub-P001_ses-clinical_desc-brain_{seq}.nii.gz")
            assert native.shape == raw.shape and np.allclose(native.affine, raw.affine), (method, seq)
        explain = np.load(anat / f"sub-P001_ses-clinical_desc-{method}_explain.npz")
        assert "output" in explain
        if method == "model0":
            assert "attention_4" in explain and "gradcam_output" in explain and "gradcam_target" in explain
    assert (res / "superres" / "dataset_description.json").is_file()
    # the interpolation baseline is the preprocessed clinical scan itself
    base = nib.load(anat / "sub-P001_ses-clinical_space-MNI152NLin2009cSym_desc-interpaffinelinear_T1w.nii.gz")
    prep_t1 = nib.load(prep_anat / "sub-P001_ses-clinical_space-MNI152NLin2009cSym_desc-affinelinear_T1w.nii.gz")
    assert np.allclose(np.asarray(base.dataobj), np.asarray(prep_t1.dataobj))


def check_evaluation(res: Path, workdir: Path) -> None:
    """Tiny-preset evaluation: every table and figure exists and is non-empty, numbers are sane, HTML report."""
    from brainsr.report.build import GROUP_FIGURES, GROUP_TABLES, REPORT_TABLES, SUBJECT_FIGURES

    for name in GROUP_TABLES.values():
        assert (res / "tables" / name).stat().st_size > 0, name
    for name in (*GROUP_FIGURES.values(), *SUBJECT_FIGURES.values()):
        assert (res / "figures" / name).stat().st_size > 5000, name
    table1 = pd.read_csv(res / "tables" / "table1_architectures.tsv", sep="\t").set_index("method")
    assert list(table1.index) == ["interpaffinelinear", "unet", "vit", "model0"]
    assert (table1.loc[["unet", "vit", "model0"], "parameters"] > 0).all()
    assert table1["ssim"].str.contains("±").all()  # two evaluated subjects: mean ± SD
    s1 = pd.read_csv(res / "tables" / "tableS1_experiments.tsv", sep="\t")
    assert sorted(s1.method) == sorted(TINY_METHODS)
    table2 = pd.read_csv(res / "tables" / "table2_quality_errors.tsv", sep="\t")
    assert "all" in set(table2.protocol) and "cjv" in table2.columns
    image = pd.read_csv(res / "tables" / "evaluate_image_metrics.tsv", sep="\t")
    ssim = image[(image.metric == "ssim") & (image.region == "brain")].value
    assert len(ssim) == 2 * len(TINY_METHODS) * 3 and ssim.between(0, 1).all()
    agreement = pd.read_csv(res / "tables" / "evaluate_agreement.tsv", sep="\t")
    dice = agreement[(agreement.metric == "dice") & (agreement["class"] == "tissue")]
    research_vs_truth = dice[(dice.method == "research") & (dice.reference == "truth")].value
    assert len(research_vs_truth) == 2 * 3 and research_vs_truth.min() > 0.6, research_vs_truth
    ba = pd.read_csv(res / "tables" / "fig10_bland_altman.tsv", sep="\t")
    assert (ba.n == 2).all() and ba.loa_high_pct.notna().any()
    longitudinal = pd.read_csv(res / "tables" / "fig13_longitudinal.tsv", sep="\t")
    assert sorted(longitudinal.month.unique()) == [0, 2]
    findings = pd.read_csv(res / "tables" / "evaluation_findings.tsv", sep="\t", keep_default_na=False)
    assert set(findings.holds) <= {"yes", "no", "n/a"} and (findings.holds != "n/a").sum() > 10
    sheet = pd.read_csv(res / "rating" / "sheet.csv")
    key = pd.read_csv(res / "rating_key" / "key.csv")
    assert len(sheet) == len(key) == 2 * 3 and sorted(set(key.scan_set)) == ["interpolated", "research", "upsampled"]
    assert not list((res / "rating").rglob("key*"))
    assert len(list((res / "rating" / "images").glob("item-*.nii.gz"))) == 2 * 3 * 3
    for table in REPORT_TABLES:  # the tables the report shows inline (a TSV could only be downloaded)
        assert (res / "report" / GROUP_TABLES[table].replace(".tsv", ".html")).stat().st_size > 500, table
    html = workdir / "report.html"
    out = snakemake("--report", str(html), "--configfile", str(TINY), cwd=workdir)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert html.stat().st_size > 100_000
    # no docutils warning or error in a caption or on the landing page: printed while rendering, boxed in the HTML
    printed = re.findall(r"^.*\((?:WARNING|ERROR|SEVERE)/\d\).*$", out.stdout + out.stderr, re.MULTILINE)
    assert not printed, printed[:10]
    text = html.read_text(encoding="utf-8")
    boxes = re.findall(r"System Message: [^<]{0,200}", text)
    assert not boxes, boxes[:10]
    # the landing page says what the run was and links to the claims table
    assert "javascript:app.showCategory('Claims%20of%20the%20paper%20checked%20on%20this%20run')" in text
    assert TINY.name in text and "3 patients" in text


@pytest.mark.e2e
def test_bids_dir_points_the_workflow_at_an_existing_dataset(tmp_path, p1_cohort):
    """The same workflow on a user's BIDS dataset: one config key. Uses a one-patient synthetic dataset as input."""
    data = tmp_path / "my_bids"
    shutil.copytree(p1_cohort, data)
    # a second subject lacking its clinical FLAIR is reported and left out, the rest still runs
    (data / "sub-P002" / "ses-clinical" / "anat").mkdir(parents=True)
    work = tmp_path / "work"
    # one prep (affine + linear) is enough here: every alignment and variant runs in the tiny end-to-end test
    one_prep = tmp_path / "one_prep.yaml"
    one_prep.write_text(
        f"bids_dir: {data}\npreprocess:\n  alignments: [affine]\n  build_variants: [linear]\n"
        "superres:\n  run: [model0]\n"
    )
    config = ["--configfile", str(TINY), str(one_prep)]
    out = snakemake("--cores", "2", *config, cwd=work)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "sub-P002" in out.stdout + out.stderr  # the problem is reported
    inv = pd.read_csv(work / "results" / "tables" / "bids_inventory.tsv", sep="\t")
    assert set(inv.loc[inv["status"] == "ok", "subject"]) == {"P001"}
    assert not (work / "results" / "sourcedata").exists()  # nothing simulated
    quality = pd.read_csv(work / "results" / "tables" / "preprocess_alignment_quality.tsv", sep="\t", dtype=str)
    assert set(quality["subject"]) == {"P001"} and len(quality) == 2  # two sessions x one prep
    assert not (work / "results" / "tables" / "preprocess_accuracy.tsv").exists()  # no ground truth here

    # new data arrives: a subject not in participants.tsv. The frozen split makes it a test subject; the dry run
    # lists only its preprocessing, its upsampling (the interpolation baselines: nothing is trained here), its
    # evaluation and the group tables
    _copy_subject(data, "P001", "P003")
    new = snakemake("-n", "--cores", "2", *config, cwd=work)
    text = new.stdout + new.stderr
    assert new.returncode == 0, text
    assert "sub-P003: new subject, not in splits.tsv: test" in text
    preps = 1  # affinelinear: its interpolation baseline, and the research scans
    assert job_stats(text) == {
        "bids_inventory": 1,
        "preprocess_evaluated": 2,  # per session: affinemi, affinecr; affinelinear
        "preprocess_tables": 1,
        "superres_infer": preps,
        "evaluate_clinical": preps,  # one job per scan set: the baseline's, and the research scans'
        "evaluate_research": preps,
        # the first test subject: the lesion prior, the figures and tables of the evaluation appear now
        "evaluate_lesion_prior": 1,
        "report_tables": 1,
        "report_figures": 1,
        "report_rating": 1,
        "all": 1,
    }, text
    assert set(re.findall(r"wildcards: .*?subject=(\w+)", text)) == {"P003"}  # nothing of sub-P001 reruns

    # bad input (issues 7, 22): every session of sub-P004..P008 has one unusable file, sub-P_8 an invalid label. Under
    # --keep-going each failing job logs one message naming the file and the problem, sub-P003 (new, valid) still
    # gets prepared, and no partial output of a failed job remains
    bad = _plant_bad_subjects(data)
    run = snakemake("--cores", "2", "--keep-going", "--until", "preprocess_evaluated", *config, cwd=work)
    text = run.stdout + run.stderr
    failed = set(re.findall(r"log: logs/preprocess_evaluated/subject-(\w+?)_session-(\w+)\.log \(check log", text))
    assert run.returncode != 0 and failed == set(bad), text[-3000:]
    assert "invalid subject label 'P_8'" in text
    for session in ("clinical", "research"):
        prepared = work / "results" / "preprocess" / "sub-P003" / f"ses-{session}" / "anat"
        assert (prepared / f"sub-P003_ses-{session}_space-T1w_desc-brain_mask.nii.gz").exists(), session
    for (subject, session), (path, message) in bad.items():
        log = (work / "logs" / "preprocess_evaluated" / f"subject-{subject}_session-{session}.log").read_text()
        assert f"{path}: {message}" in log and "Traceback" not in log, (subject, session, log[-2000:])
        assert not [f for f in (work / "results" / "preprocess" / f"sub-{subject}").rglob("*") if f.is_file()]
    assert not [f for f in (work / "results").rglob("*") if ".tmp" in f.name]


def _copy_subject(data: Path, source: str, target: str) -> None:
    """Copy every file of sub-<source> in the BIDS dataset ``data`` to sub-<target>, renamed."""
    for path in (data / f"sub-{source}").rglob("*.*"):
        name = path.relative_to(data / f"sub-{source}").as_posix().replace(f"sub-{source}", f"sub-{target}")
        (data / f"sub-{target}" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, data / f"sub-{target}" / name)


def _plant_bad_subjects(data: Path) -> dict[tuple[str, str], tuple[Path, str]]:
    """Copies of sub-P001 with one broken file per session; returns {(subject, session): (file, message)}."""
    import gzip

    import nibabel as nib
    import numpy as np

    def resave(path: Path, data_: np.ndarray, affine: np.ndarray | None = None) -> None:
        img = nib.load(path)
        nib.save(nib.Nifti1Image(data_.astype(np.float32), img.affine if affine is None else affine), path)

    def nan(path: Path) -> None:
        values = nib.load(path).get_fdata()
        values[tuple(s // 2 for s in values.shape)] = np.nan
        resave(path, values)

    def sheared(path: Path) -> None:
        affine = nib.load(path).affine.copy()
        affine[:3, 1] += 0.3 * affine[:3, 0]  # the second voxel axis leans 17 degrees towards the first
        resave(path, nib.load(path).get_fdata(), affine)

    def flat_zoom(path: Path) -> None:
        img = nib.Nifti1Image(nib.load(path).get_fdata().astype(np.float32), np.eye(4))
        img.set_qform(None, code=0)
        img.set_sform(np.diag([1.0, 0.0, 1.0, 1.0]), code=1)
        nib.save(img, path)

    def noise_head(path: Path) -> None:  # head-sized and readable, but brain extraction finds no brain in it
        noise = np.random.default_rng(0).uniform(0, 100, (48, 48, 48)).astype(np.float32)
        nib.save(nib.Nifti1Image(noise, np.diag([2.0, 2.0, 2.0, 1.0])), path)

    def tiny_volume(path: Path) -> None:
        nib.save(nib.Nifti1Image(np.arange(27, dtype=np.float32).reshape(3, 3, 3), np.eye(4)), path)

    def no_orientation(path: Path) -> None:
        nib.save(nib.Nifti1Image(nib.load(path).get_fdata().astype(np.float32), None), path)

    cases = {
        ("P004", "clinical", "T1w"): (lambda p: p.write_bytes(p.read_bytes()[:2000]), "cannot be read as NIfTI"),
        ("P004", "research", "FLAIR"): (nan, "1 voxels are NaN or Inf"),
        ("P005", "clinical", "FLAIR"): (
            lambda p: resave(p, np.stack([nib.load(p).get_fdata()] * 2, axis=-1)),
            "expected a 3D image, got 4D",
        ),
        ("P005", "research", "T2w"): (sheared, "affine has shear 0.287 beyond the tolerance 0.05"),
        ("P006", "clinical", "T2w"): (lambda p: p.write_bytes(gzip.compress(b"DICM? no")), "cannot be read as NIfTI"),
        ("P006", "research", "T1w"): (
            lambda p: resave(p, 0 * nib.load(p).get_fdata()),
            "image is empty (all voxels are zero)",
        ),
        ("P007", "clinical", "T1w"): (noise_head, "brain extraction failed"),
        ("P007", "research", "T2w"): (flat_zoom, "degenerate voxel-to-world affine"),
        ("P008", "clinical", "T1w"): (tiny_volume, "volume (3, 3, 3) voxels, field of view [3.0, 3.0, 3.0] mm"),
        ("P008", "research", "FLAIR"): (no_orientation, "header has no usable orientation"),
    }
    for subject in ("P004", "P005", "P006", "P007", "P008", "P_8"):
        _copy_subject(data, "P001", subject)
    bad = {}
    for (subject, session, seq), (spoil, message) in cases.items():
        path = data / f"sub-{subject}" / f"ses-{session}" / "anat" / f"sub-{subject}_ses-{session}_{seq}.nii.gz"
        spoil(path)
        if seq == "T1w" and message.startswith("brain extraction"):  # the whole session is the small head
            for other in ("T2w", "FLAIR"):
                noise_head(path.with_name(path.name.replace("T1w", other)))
        bad[subject, session] = (path, message)
    return bad


@pytest.mark.e2e
def test_killed_workflow_resumes_training_from_the_last_checkpoint(tiny_run, tmp_path):
    """Kill Snakemake (SIGKILL, the whole process group) after training epoch 1 of 4; the rerun resumes at epoch 2."""
    assert tiny_run.result.returncode == 0, "the local tiny run failed (see test_tiny_preset_end_to_end)"
    models = "results/superres/models/model0"
    work = tiny_run.copy(tmp_path / "work", drop=("logs", f"{models}/work"))
    longer = tmp_path / "four_epochs.yaml"
    longer.write_text("superres:\n  experiments:\n    model0: {epochs: 4}\n")
    args = [f"{models}/model.pt", "--cores", "2", "--configfile", str(TINY), str(longer)]  # target first: nargs
    command = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(work), *args]
    history = work / models / "work" / "history.tsv"
    proc = subprocess.Popen(
        command,
        env=workflow_env(work / "tmp"),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 900
        while not (history.is_file() and len(pd.read_csv(history, sep="\t")) >= 1):
            assert proc.poll() is None, "the workflow ended before the first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 900 s"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert len(pd.read_csv(history, sep="\t")) == 1 and not (work / models / "model.pt").exists()
    assert snakemake("--unlock", *args, cwd=work).returncode == 0  # a killed Snakemake leaves its lock
    again = snakemake("--rerun-incomplete", *args, cwd=work, tmpdir=work / "tmp")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    log = (work / "logs" / "superres_train" / "experiment-model0.log").read_text()
    assert "after epoch 1" in log, log[-2000:]
    assert list(pd.read_csv(work / models / "history.tsv", sep="\t").epoch) == [1, 2, 3, 4]


@pytest.mark.e2e
def test_the_same_config_gives_the_same_numbers(tiny_run, tmp_path):
    """Determinism (issue 7): model0 trained again from scratch, and the test patient made again from its simulation
    on (preprocessing, every method's upsampling, evaluation, segmentation), with every group table after them: each
    results table holds the numbers the first run wrote (wall-clock columns aside)."""
    assert tiny_run.result.returncode == 0, "the local tiny run failed (see test_tiny_preset_end_to_end)"
    model0 = "results/superres/models/model0"
    work = tiny_run.copy(tmp_path / "work", drop=("logs", f"{model0}/work"))  # no checkpoint to resume from
    res = work / "results"

    def tables(run_dir: Path) -> dict[Path, str]:
        """Every results table as text, without wall-clock columns, the run's folder written as <run>."""
        found = {}
        for path in (work / "results").rglob("*"):
            if path.suffix in (".tsv", ".csv"):
                df = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
                df = df.drop(columns=[c for c in df.columns if c.endswith(("seconds", "_per_s"))])  # wall clock
                found[path.relative_to(res)] = df.to_csv(sep="\t", index=False).replace(str(run_dir), "<run>")
        return found

    before = tables(tiny_run.workdir)  # the copy's tables, as the first run wrote them
    source = "results/sourcedata/synthetic/sub-P001/ses-clinical/anat/sub-P001_ses-clinical_T1w.nii.gz"
    run = snakemake(
        "--cores", "2", "--configfile", str(TINY), "--forcerun", source, f"{model0}/model.pt",
        cwd=work, tmpdir=work / "tmp",
    )  # fmt: skip
    text = run.stdout + run.stderr
    assert run.returncode == 0, text[-3000:]
    stats = job_stats(text)
    assert stats["simulate_patient"] == 1 and stats["superres_train"] == 1, stats
    assert stats["preprocess_evaluated"] == 2 and stats["report_tables"] == 1, stats
    after = tables(work)
    assert set(after) >= set(before)
    remade = [k for k in before if (res / k).stat().st_mtime > (tiny_run.workdir / "results" / k).stat().st_mtime]
    assert any(k.parts[0] == "tables" for k in remade), remade
    assert Path(model0, "history.tsv").relative_to("results") in remade, remade  # model0 was trained again
    changed = [str(k) for k in before if before[k] != after[k]]
    print(len(before), "tables,", len(remade), "written again, differing:", changed)
    assert not changed
