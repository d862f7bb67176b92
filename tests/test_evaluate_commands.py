"""Tests of the file-level commands ``brainsr evaluate`` and ``brainsr segment`` on a small phantom, and of the one
call per scan set (``brainsr evaluate scanset``) against them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage as ndi

import brainsr
from brainsr.base.images import load_checked
from brainsr.cli import main
from brainsr.metrics.agreement import overlap_metrics
from brainsr.metrics.evaluate import evaluate_images, evaluate_quality
from brainsr.metrics.scanset import ScanSetInputs, evaluate_scan_set, memo_loader
from brainsr.segment.run import segment_classes, segment_tissues

AFFINE = np.diag([1.0, 1.0, 1.0, 1.0])
#: phantom classes: 0 outside, 1 CSF, 2 GM, 3 WM, 4 lesion; contrasts (FLAIR, T2w, T1w) in [0, 1]
CONTRAST = {1: (0.1, 0.9, 0.1), 2: (0.6, 0.5, 0.5), 3: (0.6, 0.3, 0.8), 4: (1.0, 0.7, 0.5)}


def _phantom(tmp_path, noise=0.02, seed=0):
    rng = np.random.default_rng(seed)
    shape = (32, 32, 24)
    ijk = np.indices(shape).astype(float)
    r = np.sqrt(((ijk[0] - 15.5) ** 2 + (ijk[1] - 15.5) ** 2) + ((ijk[2] - 11.5) * 1.3) ** 2)
    lab = np.select([r < 7, r < 10.5, r < 12], [3, 2, 1], 0)  # WM core, GM shell, CSF shell
    lab[(r < 3.5) & (ijk[0] > 16)] = 4  # a lesion inside the WM
    paths = {}
    for k, seq in enumerate(("FLAIR", "T2w", "T1w")):
        img = np.zeros(shape, np.float32)
        for value, contrast in CONTRAST.items():
            img[lab == value] = contrast[k]
        img = np.clip(img + noise * rng.standard_normal(shape), 0, 1) * (lab > 0)
        paths[seq] = tmp_path / f"{seq}.nii.gz"
        nib.save(nib.Nifti1Image(img.astype(np.float32), AFFINE), paths[seq])
    mask = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image((lab > 0).astype(np.uint8), AFFINE), mask)
    return {k: str(v) for k, v in paths.items()}, str(mask), lab


def test_evaluate_images_identical_and_different(tmp_path):
    images, mask, _ = _phantom(tmp_path)
    same = evaluate_images(images, images, mask)
    assert same["T1w"]["mae_brain"] == 0.0 and same["mean"]["ssim_fov"] == pytest.approx(1.0, abs=1e-6)
    (tmp_path / "b").mkdir()
    other, _, _ = _phantom(tmp_path / "b", seed=1)
    diff = evaluate_images(other, images, mask)
    assert 0 < diff["FLAIR"]["mae_brain"] < 0.05
    assert diff["mean"]["mae_brain"] == pytest.approx(np.mean([diff[s]["mae_brain"] for s in images]))
    with pytest.raises(ValueError, match="differ"):
        evaluate_images({"T1w": images["T1w"]}, images, mask)


def test_evaluate_rejects_another_grid(tmp_path):
    images, mask, _ = _phantom(tmp_path)
    moved = tmp_path / "moved.nii.gz"
    data = np.random.default_rng(0).random((32, 32, 24)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 1.0, 1.0, 1.0])), moved)
    with pytest.raises(ValueError, match=r"moved\.nii\.gz: grid"):
        evaluate_images({**images, "T1w": str(moved)}, images, mask)


def test_tissues_quality_and_classes(tmp_path):
    images, mask, lab = _phantom(tmp_path)
    tissues = tmp_path / "tissues.nii.gz"
    volumes = segment_tissues(images["T1w"], mask, str(tissues))
    t = np.asarray(nib.load(tissues).dataobj)
    # T1w: CSF 0.1 < GM 0.5 (and the lesion, 0.5) < WM 0.8
    assert np.mean(t[lab == 1] == 1) > 0.99 and np.mean(t[lab == 3] == 3) > 0.99 and np.mean(t[lab == 2] == 2) > 0.99
    assert volumes["csf_ml"] == pytest.approx(np.sum(t == 1) / 1000)
    quality = evaluate_quality({"research": images["T1w"]}, str(tissues), mask)["research"]
    assert quality["cjv"] > 0 and quality["wmcsf_mean"] > 1
    seg = tmp_path / "classes.nii.gz"
    vols = segment_classes(images, mask, None, str(seg), wmh={"k_sd": 1.3})
    s = np.asarray(nib.load(seg).dataobj)
    # CSF: the fluid shell is CSF, the voxels of it touching tissue its pial layer (paper 3.8.3)
    touching = ndi.binary_dilation(lab >= 2, ndi.generate_binary_structure(3, 3))
    assert np.mean(s[(lab == 1) & ~touching] == 1) > 0.95 and np.mean(s[(lab == 1) & touching] == 3) > 0.95
    assert np.mean(s[lab == 4] == 5) > 0.8  # the lesion is WMH
    assert np.mean(s[(lab == 2) | (lab == 3)] == 4) > 0.9  # normal tissue
    assert vols["wmh_ml"] == pytest.approx(np.sum(s == 5) / 1000)
    # stated Dice against the phantom's known labels
    assert overlap_metrics(np.isin(s, (1, 3)), lab == 1)["dice"] > 0.95
    assert overlap_metrics(s == 5, lab == 4)["dice"] > 0.8
    assert overlap_metrics(np.isin(s, (4, 5)), lab >= 2)["dice"] > 0.95
    with pytest.raises(ValueError, match="missing"):
        segment_classes({"T1w": images["T1w"]}, mask, None, str(seg))


def test_cli_writes_json_and_reports_bad_input(tmp_path, caplog):
    images, mask, _ = _phantom(tmp_path)
    out = tmp_path / "m.json"
    argv = ["evaluate", "image", "--mask", mask, "--out", str(out), "--method"]
    argv += [f"{k}={v}" for k, v in images.items()] + ["--research"] + [f"{k}={v}" for k, v in images.items()]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["T2w"]["psnr_brain"] == 100.0 and "mae" in result["metrics"]
    empty = tmp_path / "empty.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((32, 32, 24), np.uint8), AFFINE), empty)
    assert main([*argv[:2], "--mask", str(empty), *argv[4:]]) == 1
    assert "empty" in caplog.text


def _truth(tmp_path, lab):
    """The phantom's labels as a ground truth with its lookup table (no sinus, pial, deep GM or stroke voxels)."""
    truth = tmp_path / "truth.nii.gz"
    nib.save(nib.Nifti1Image(lab.astype(np.uint8), AFFINE), truth)
    lookup = tmp_path / "lookup.tsv"
    names = ["csf", "gm", "wm", "wmh", "sinus", "pial", "deep_gm", "stroke"]
    lookup.write_text("index\tname\n" + "".join(f"{i}\t{n}\n" for i, n in enumerate(names, 1)))
    return str(truth), str(lookup)


def _kv(mapping):
    return [f"{k}={v}" for k, v in mapping.items()]


def _cli(*argv):
    assert main(list(argv)) == 0, argv


def _out(paths, prefix):
    """--out and --out-json of a label image and its volumes (``<prefix>_dseg``, ``<prefix>_volumes``)."""
    return ["--out", paths[f"{prefix}_dseg"], "--out-json", paths[f"{prefix}_volumes"]]


def test_scan_set_writes_what_the_separate_commands_write(tmp_path):
    # a research scan set (its tissues, quality, classes, agreement with the ground truth) and a method's scan set
    # (image metrics, quality and agreement against that research set), segmented in a mask of its own
    research, mask, lab = _phantom(tmp_path)
    (tmp_path / "m").mkdir()
    method, _, _ = _phantom(tmp_path / "m", seed=1)
    own_mask = str(tmp_path / "own_mask.nii.gz")
    nib.save(nib.Nifti1Image(ndi.binary_dilation(lab > 0).astype(np.uint8), AFFINE), own_mask)
    truth, lookup = _truth(tmp_path, lab)
    common = ["--seed", "3", "--wmh-json", '{"k_sd": 1.3}']
    gt = ["--truth", truth, "--lookup", lookup]
    sep = {k: str(tmp_path / "separate" / f"{k}{'.nii.gz' if 'dseg' in k else '.json'}") for k in _SEPARATE}
    r_images, c_images = ["--image", *_kv(research)], ["--image", *_kv(method)]
    r_tissues, r_dseg = ["--tissues", sep["rt_dseg"]], sep["r_dseg"]
    # the separate commands, as the former rules ran them
    _cli("segment", "tissues", "--t1", research["T1w"], "--mask", mask, "--seed", "3", *_out(sep, "rt"))
    _cli("evaluate", "quality", *r_images, *r_tissues, "--mask", mask, "--out", sep["r_quality"])
    _cli("segment", "classes", *r_images, "--mask", mask, *common, *_out(sep, "r"))
    _cli("evaluate", "agreement", "--seg", r_dseg, *gt, "--out", sep["r_agreement"])
    both = ["--method", *_kv(method), "--research", *_kv(research), "--mask", mask]
    _cli("evaluate", "image", *both, "--out", sep["c_imagemetrics"])
    _cli("evaluate", "quality", *c_images, *r_tissues, "--mask", mask, "--out", sep["c_quality"])
    _cli("segment", "classes", *c_images, "--mask", own_mask, *common, *_out(sep, "c"))
    _cli("evaluate", "agreement", "--seg", sep["c_dseg"], "--reference", r_dseg, *gt, "--out", sep["c_agreement"])
    # one call per scan set
    one = {k: v.replace("separate", "one") for k, v in sep.items()}
    r_kinds = {"tissues": "rt_dseg", "tissue_volumes": "rt_volumes", "quality": "r_quality"}
    r_kinds |= {"dseg": "r_dseg", "volumes": "r_volumes", "agreement": "r_agreement"}
    r_out = ["--out", *_kv({k: one[v] for k, v in r_kinds.items()})]
    _cli("evaluate", "scanset", *r_images, "--mask", mask, *common, *gt, *r_out)
    c_out = {k: f"c_{k}" for k in ("imagemetrics", "quality", "dseg", "volumes", "agreement")}
    refs = ["--research", *_kv(research), "--research-mask", mask, "--tissues", one["rt_dseg"]]
    refs += ["--reference", one["r_dseg"], *common, *gt, "--out", *_kv({k: one[v] for k, v in c_out.items()})]
    _cli("evaluate", "scanset", *c_images, "--mask", own_mask, *refs)
    assert sorted(os.listdir(tmp_path / "one")) == sorted(os.listdir(tmp_path / "separate"))
    for key in _SEPARATE:
        if key.endswith("dseg"):
            a, b = nib.load(one[key]), nib.load(sep[key])
            assert np.array_equal(a.get_fdata(), b.get_fdata()) and np.array_equal(a.affine, b.affine), key
            assert a.get_data_dtype() == b.get_data_dtype(), key
        else:
            assert Path(one[key]).read_text() == Path(sep[key]).read_text(), key
    assert json.loads(Path(one["c_agreement"]).read_text())["truth"]["tissue"]["dice"] > 0.8  # own, dilated mask


_SEPARATE = (
    *("rt_dseg", "rt_volumes", "r_quality", "r_dseg", "r_volumes", "r_agreement"),
    *("c_imagemetrics", "c_quality", "c_dseg", "c_volumes", "c_agreement"),
)


def test_scan_set_writes_nothing_when_a_step_fails(tmp_path):
    images, mask, _ = _phantom(tmp_path)
    moved = tmp_path / "moved.nii.gz"
    labels = (np.arange(32 * 32 * 24).reshape(32, 32, 24) % 5).astype(np.uint8)
    nib.save(nib.Nifti1Image(labels, np.diag([2.0, 1.0, 1.0, 1.0])), moved)
    out = {k: tmp_path / "out" / f"{k}.nii.gz" for k in ("tissues", "dseg")}
    out |= {k: tmp_path / "out" / f"{k}.json" for k in ("tissue_volumes", "quality", "volumes", "agreement")}
    # the agreement, the last step, fails on a reference of another grid: no output, no temporary file remains
    with pytest.raises(ValueError, match=r"moved\.nii\.gz: grid"):
        evaluate_scan_set(ScanSetInputs(images, mask, reference=str(moved)), out)
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(ValueError, match="pair"):
        evaluate_scan_set(ScanSetInputs(images, mask), {"dseg": out["dseg"]})
    with pytest.raises(ValueError, match="quality"):
        evaluate_scan_set(ScanSetInputs(images, mask), {"quality": out["quality"]})
    with pytest.raises(ValueError, match="unknown"):
        evaluate_scan_set(ScanSetInputs(images, mask), {"segmentation": out["dseg"]})
    assert list((tmp_path / "out").iterdir()) == []


def test_memo_loader_reads_each_file_once(tmp_path):
    images, _, _ = _phantom(tmp_path)
    calls = []

    def counting(path):
        calls.append(path)
        return load_checked(path)

    load = memo_loader(counting)
    assert load(images["T1w"]) is load(Path(images["T1w"]))
    assert load(images["T2w"]) is not load(images["T1w"]) and len(calls) == 2


def test_scan_set_evaluation_does_not_import_torch(tmp_path):
    # every output of a scan set, image metrics (SSIM) included, in a fresh interpreter: torch is never imported
    research, mask, _ = _phantom(tmp_path)
    (tmp_path / "m").mkdir()
    method, _, _ = _phantom(tmp_path / "m", seed=1)
    out = {k: str(tmp_path / "out" / f"{k}.nii.gz") for k in ("tissues", "dseg")}
    out |= {k: str(tmp_path / "out" / f"{k}.json") for k in ("tissue_volumes", "imagemetrics", "quality", "volumes")}
    argv = ["evaluate", "scanset", "--image", *_kv(method), "--mask", mask, "--research", *_kv(research)]
    argv += ["--out", *_kv(out)]
    code = f"import sys; from brainsr.cli import main; rc = main({argv!r}); print(rc, 'torch' in sys.modules)"
    src = str(Path(brainsr.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "False"], done.stderr
    assert json.loads(Path(out["imagemetrics"]).read_text())["mean"]["ssim_brain"] < 1


def test_agreement_takes_the_truth_through_the_scan_sets_preprocessing(tmp_path, caplog):
    """--truth-chain/--truth-pose/--truth-field: with identities the truth is the template-frame one; a true pose
    that the (identity) registration missed moves the labels, and the overlap drops."""
    import ants

    from brainsr.base.images import scoped_tmpdir

    images, mask, lab = _phantom(tmp_path)
    truth, lookup = _truth(tmp_path, lab)
    seg = tmp_path / "dseg.nii.gz"
    _cli(
        "segment",
        "classes",
        *["--image", *_kv(images)],
        "--mask",
        mask,
        *_out({"c_dseg": str(seg), "c_volumes": str(tmp_path / "v.json")}, "c"),
    )
    chain = str(tmp_path / "id.mat")
    with scoped_tmpdir():
        ants.write_transform(ants.create_ants_transform(transform_type="AffineTransform", dimension=3), chain)
    field = tmp_path / "field.nii.gz"
    grid = np.moveaxis(np.indices((36, 36, 28)) * 1.0 - 2, 0, -1).astype(np.float32)  # identity, 2 voxels margin
    f_aff = np.eye(4)
    f_aff[:3, 3] = -2
    nib.save(nib.Nifti1Image(grid[:, :, :, None, :], f_aff), field)
    results = {}
    for name, shift in (("none", None), ("identity", 0.0), ("moved", 3.0)):
        pose = np.eye(4)
        pose[0, 3] = shift or 0.0
        (tmp_path / f"{name}.txt").write_text("\n".join(" ".join(map(str, r)) for r in pose) + "\n")
        path = [] if shift is None else ["--truth-chain", chain, "--truth-pose", str(tmp_path / f"{name}.txt")]
        path += [] if shift is None else ["--truth-field", str(field)]
        out = tmp_path / f"{name}.json"
        _cli("evaluate", "agreement", "--seg", str(seg), "--truth", truth, "--lookup", lookup, *path, "--out", str(out))
        results[name] = json.loads(out.read_text())["truth"]
    assert results["identity"] == results["none"]
    assert results["moved"]["tissue"]["dice"] < results["none"]["tissue"]["dice"] - 0.1
    half = ["--seg", str(seg), "--truth", truth, "--lookup", lookup, "--truth-pose", "x", "--out", str(out)]
    assert main(["evaluate", "agreement", *half]) == 1
    assert "go together" in caplog.text
