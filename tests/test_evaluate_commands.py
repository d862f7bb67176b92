"""Tests of the file-level commands ``brainsr evaluate`` and ``brainsr segment`` on a small phantom."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from brainsr.cli import main
from brainsr.metrics.agreement import overlap_metrics
from brainsr.metrics.commands import evaluate_images, evaluate_quality
from brainsr.segment.commands import segment_classes, segment_tissues

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
    assert np.mean(s[lab == 1] == 1) > 0.95  # CSF
    assert np.mean(s[lab == 4] == 5) > 0.8  # the lesion is WMH
    assert np.mean(s[(lab == 2) | (lab == 3)] == 4) > 0.9  # normal tissue
    assert vols["wmh_ml"] == pytest.approx(np.sum(s == 5) / 1000)
    # stated Dice against the phantom's known labels
    assert overlap_metrics(s == 1, lab == 1)["dice"] > 0.95
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
