"""Tests for brainsr.simulate.qc: realism numbers on phantoms, and the cohort table / figure on one simulated
patient."""

from __future__ import annotations

import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainsr.simulate import qc
from brainsr.simulate.mr import LABELS

REPO = Path(__file__).resolve().parents[1]
SIGMA = 0.1  # Rician noise level of the phantom's air


def _save(arr: np.ndarray, path: Path, affine: np.ndarray) -> str:
    nib.save(nib.Nifti1Image(arr, affine), path)
    return str(path)


def _phantom(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """48x48x6 phantom with 1x1x4 mm voxels: a head of muscle (5) around an intracranial box of CSF (1),
    a GM block (2) holding a two-slice WM block (3, its in-plane rim at the partial-volume value 2.5) and a
    small WMH (4.5); Rician air noise far from the head, a 'ringing' band (1.0) near it."""
    shape = (48, 48, 6)
    labels = np.zeros(shape, np.uint8)
    labels[12:36, 12:36] = LABELS["muscle"]
    labels[14:34, 14:34] = LABELS["csf"]
    labels[16:32, 16:32] = LABELS["gm"]
    labels[18:30, 24:31, 2:4] = LABELS["wm"]
    labels[20:24, 26:29, 2:4] = LABELS["wmh"]
    value = {
        0: 0.0,
        LABELS["muscle"]: 5.0,
        LABELS["csf"]: 1.0,
        LABELS["gm"]: 2.0,
        LABELS["wm"]: 3.0,
        LABELS["wmh"]: 4.5,
    }
    img = np.zeros(shape)
    for lab, v in value.items():
        img[labels == lab] = v
    wm_rim = np.zeros(shape, bool)
    wm_rim[18:30, 24:31, 2:4] = True
    wm_rim[19:29, 25:30, 2:4] = False
    img[wm_rim] = 2.5
    air = labels == 0
    noise = SIGMA * np.abs(rng.normal(size=shape) + 1j * rng.normal(size=shape))
    img[air] = noise[air]
    near = np.zeros(shape, bool)
    near[7:41, 7:41] = True
    img[near & air] = 1.0
    brain = np.isin(labels, [LABELS[k] for k in ("csf", "gm", "wm", "wmh")]).astype(np.uint8)
    return img.astype(np.float32), labels, brain


@pytest.fixture
def phantom(tmp_path: Path) -> tuple[str, str, str, np.ndarray, np.ndarray]:
    img, labels, brain = _phantom(np.random.default_rng(0))
    aff = np.diag([1.0, 1.0, 4.0, 1.0])
    return (
        _save(img, tmp_path / "img.nii.gz", aff),
        _save(labels, tmp_path / "dseg.nii.gz", aff),
        _save(brain, tmp_path / "mask.nii.gz", aff),
        img,
        brain,
    )


def test_image_quality_phantom(phantom: tuple) -> None:
    image, dseg, mask, img, brain = phantom
    q = qc.image_quality(image, dseg, mask)
    assert set(q) == set(qc.METRICS)
    # in-plane erosion removes the 2.5 rim; a 3D erosion would empty the two-slice WM block
    assert q["mean_wm"] == pytest.approx(3.0)
    assert q["mean_gm"] == pytest.approx(2.0)
    assert q["mean_csf"] == pytest.approx(1.0)
    assert q["mean_wmh"] == pytest.approx(4.5)  # too small to erode: used whole
    assert q["gm_wm_contrast_ratio"] == pytest.approx(2 / 3)
    assert q["wmh_wm_ratio"] == pytest.approx(1.5)
    assert q["wm2max"] == pytest.approx(3.0 / np.percentile(img[brain > 0], 95))
    # the 1.0 band next to the head is excluded from the noise estimate
    assert q["noise_sigma"] == pytest.approx(SIGMA, rel=0.05)
    assert q["snr_wm"] == pytest.approx(3.0 / SIGMA, rel=0.05)
    assert q["cnr_gm_wm"] == pytest.approx(1.0 / SIGMA, rel=0.05)


def test_image_quality_without_wmh_gives_nan(tmp_path: Path) -> None:
    img, labels, brain = _phantom(np.random.default_rng(1))
    img[labels == LABELS["wmh"]] = 3.0
    labels[labels == LABELS["wmh"]] = LABELS["wm"]
    aff = np.diag([1.0, 1.0, 4.0, 1.0])
    q = qc.image_quality(
        _save(img, tmp_path / "i.nii.gz", aff),
        _save(labels, tmp_path / "d.nii.gz", aff),
        _save(brain, tmp_path / "m.nii.gz", aff),
    )
    assert math.isnan(q["mean_wmh"]) and math.isnan(q["wmh_wm_ratio"])
    assert q["mean_wm"] == pytest.approx(3.0)


def test_image_quality_empty_wm_names_file(tmp_path: Path) -> None:
    img, labels, brain = _phantom(np.random.default_rng(2))
    labels[labels == LABELS["wm"]] = LABELS["gm"]
    aff = np.eye(4)
    dseg = _save(labels, tmp_path / "sub-X_dseg.nii.gz", aff)
    with pytest.raises(ValueError, match=r"sub-X_dseg\.nii\.gz.*WM"):
        qc.image_quality(_save(img, tmp_path / "i.nii.gz", aff), dseg, _save(brain, tmp_path / "m.nii.gz", aff))


def test_image_quality_rejects_other_grid(tmp_path: Path) -> None:
    img, labels, brain = _phantom(np.random.default_rng(3))
    mask = _save(brain, tmp_path / "m.nii.gz", np.diag([2.0, 1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"m\.nii\.gz"):
        qc.image_quality(
            _save(img, tmp_path / "i.nii.gz", np.eye(4)), _save(labels, tmp_path / "d.nii.gz", np.eye(4)), mask
        )


def test_image_quality_warns_without_background(tmp_path: Path) -> None:
    img, labels, brain = _phantom(np.random.default_rng(4))
    aff = np.diag([1.0, 1.0, 4.0, 1.0])
    with pytest.warns(UserWarning, match="air voxels"):
        q = qc.image_quality(
            _save(img, tmp_path / "i.nii.gz", aff),
            _save(labels, tmp_path / "d.nii.gz", aff),
            _save(brain, tmp_path / "m.nii.gz", aff),
            background_margin_mm=100,
        )
    assert math.isnan(q["snr_wm"]) and q["gm_wm_contrast_ratio"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("flip", [False, True])
def test_display_slice_is_radiological(tmp_path: Path, flip: bool) -> None:
    """Patient right (+x) is shown on the image left and anterior at the top, whatever the storage order."""
    data = np.zeros((20, 30, 10), np.float32)
    data[15, 25, 5] = 1.0  # right, anterior
    aff = np.eye(4)
    if flip:  # stored left-to-right (LAS)
        data = data[::-1]
        aff = np.diag([-1.0, 1.0, 1.0, 1.0])
        aff[0, 3] = 19
    sl, brain, aspect = qc._display_slice(_save(data, tmp_path / "a.nii.gz", aff), None, None, "axial")
    assert brain is None and aspect == 1.0 and sl.shape == (30, 20)
    row, col = np.argwhere(sl == 1.0)[0]
    assert col < 10 and row < 15


def test_summarise_quality_orders_and_formats() -> None:
    df = pd.DataFrame(
        {
            "protocol": ["research", "P2", "research", "P2"],
            "sequence": ["T1w", "T1w", "T1w", "FLAIR"],
            "field_strength_T": [3.0, 1.5, 3.0, 1.5],
            "voxel_size_mm": ["1x1x1", "0.47x0.47x6.5", "1x1x1", "0.47x0.47x6.5"],
            **{m: [1.0, 2.0, 3.0, float("nan")] for m in qc.SUMMARY_METRICS},
        }
    )
    s = qc.summarise_quality(df)
    assert list(zip(s["protocol"], s["sequence"], strict=True)) == [("P2", "T1w"), ("P2", "FLAIR"), ("research", "T1w")]
    assert s.loc[2, "snr_wm"] == "2 ± 1.4" and s.loc[0, "snr_wm"] == "2" and s.loc[1, "snr_wm"] == "n/a"
    assert list(s["n"]) == [1, 1, 2]


# ---------------------------------------------------------------------------------------------------------
# one simulated patient (about 10 s)
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cohort(p1_cohort: Path) -> Path:
    return p1_cohort


def test_cohort_quality_table_physics(cohort: Path) -> None:
    df = qc.cohort_quality_table(cohort)
    assert len(df) == 6
    assert set(df["protocol"]) == {"P1", "research"} and set(df["group"]) == {"patient"}
    clinical = df[df["session"] == "clinical"]
    assert (clinical["field_strength_T"] == 1.5).all() and (clinical["slice_thickness_mm"] == 5.0).all()
    assert (df.loc[df["session"] == "research", "voxel_size_mm"] == "2x2x2").all()
    for _, r in df.iterrows():
        what = f"{r['session']} {r['sequence']}"
        if r["sequence"] == "T1w":
            assert r["mean_wm"] > r["mean_gm"] > r["mean_csf"], what
        elif r["sequence"] == "T2w":
            assert r["mean_csf"] > r["mean_gm"] > r["mean_wm"], what
        else:
            assert r["mean_csf"] < min(r["mean_gm"], r["mean_wm"]), what
            if not math.isnan(r["mean_wmh"]):
                assert r["wmh_wm_ratio"] > 1.0, what
        # the air-background noise estimate recovers the simulated white-matter SNR
        assert r["snr_wm"] == pytest.approx(r["snr_wm_nominal"], rel=0.2), what


def test_write_cohort_qc_and_figure(cohort: Path, tmp_path: Path) -> None:
    png, tsv, summary = tmp_path / "fig.png", tmp_path / "qc.tsv", tmp_path / "qc_summary.tsv"
    table, summ = qc.write_cohort_qc(cohort, png, tsv, summary)
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    back = pd.read_csv(tsv, sep="\t")
    assert len(back) == 6 and back["snr_wm"].iloc[0] == pytest.approx(table["snr_wm"].iloc[0], rel=1e-3)
    s = pd.read_csv(summary, sep="\t")
    assert list(s["protocol"]) == ["P1"] * 3 + ["research"] * 3 and len(summ) == 6
    out = qc.cohort_figure(cohort, tmp_path / "sub" / "fig2.png", subjects=["sub-P001"])
    assert out.stat().st_size > 10_000
