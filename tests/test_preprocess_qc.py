"""Preprocessing QC (paper 3.1): overlap, ground-truth points, TRE, alignment quality, figure and accuracy tables."""

from __future__ import annotations

import io
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainsr.base.images import scoped_tmpdir
from brainsr.preprocess.qc import (
    alignment_figure,
    alignment_quality,
    bias_variation,
    bias_variations,
    brain_points,
    dice,
    read_pose,
    session_accuracy,
    summarise_accuracy,
    tre,
    true_scanner_points,
    truth_on_grid,
)

CV_HAND = np.sqrt(2600 / 27) / 100  # 13 voxels at 90, 13 at 110, one at 100


def _img(data: np.ndarray, zoom: float = 1.0, origin: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> nib.Nifti1Image:
    aff = np.diag([zoom, zoom, zoom, 1.0])
    aff[:3, 3] = origin
    return nib.Nifti1Image(np.asarray(data), aff)


def _write_translation(path: Path, translation_lps: tuple[float, float, float]) -> str:
    import ants

    with scoped_tmpdir():
        t = ants.create_ants_transform(transform_type="AffineTransform", dimension=3, translation=translation_lps)
        ants.write_transform(t, str(path))
    return str(path)


def _write_field(path: Path, matrix: np.ndarray, shape=(12, 12, 12), origin=(-8.0, -8.0, -8.0)) -> str:
    """A coordinate field like the ground truth's: 4 mm grid, (X, Y, Z, 1, 3), value = matrix @ grid point (RAS)."""
    aff = np.diag([4.0, 4.0, 4.0, 1.0])
    aff[:3, 3] = origin
    pts = nib.affines.apply_affine(aff, np.moveaxis(np.indices(shape), 0, -1))
    vals = nib.affines.apply_affine(matrix, pts).astype(np.float32)
    img = nib.Nifti1Image(vals[:, :, :, None, :], aff)
    img.header.set_intent("vector", (), name="coordinates_mm")
    nib.save(img, str(path))
    return str(path)


def _write_pose(path: Path, m: np.ndarray) -> str:
    rows = "\n".join(" ".join(f"{v:.8f}" for v in row) for row in m)
    path.write_text(f"# subject-frame mm -> scanner mm of this image (RAS, 4x4)\n{rows}\n")
    return str(path)


def _rigid(deg: float, t: tuple[float, float, float]) -> np.ndarray:
    a = np.deg2rad(deg)
    m = np.eye(4)
    m[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    m[:3, 3] = t
    return m


def _wm_case(shell: float = 1000.0) -> tuple[np.ndarray, np.ndarray]:
    """7^3 image: WM (label 3) is the central 5^3 block, its eroded core 3^3 holds 13x90, 13x110, 1x100."""
    seg = np.full((7, 7, 7), 2, np.uint8)
    seg[1:6, 1:6, 1:6] = 3
    img = np.full((7, 7, 7), -50.0)
    img[1:6, 1:6, 1:6] = shell
    core = np.array([90.0] * 13 + [110.0] * 13 + [100.0])
    img[2:5, 2:5, 2:5] = core.reshape(3, 3, 3)
    return img, seg


def test_dice_hand_values():
    a = np.array([1, 1, 0, 0, 1], bool)
    b = np.array([1, 0, 1, 0, 0], bool)
    assert dice(a, b) == pytest.approx(2 * 1 / (3 + 2))
    assert dice(a, a) == 1.0
    assert dice(np.zeros(4), np.zeros(4)) == 1.0
    assert dice(a, np.zeros(5)) == 0.0
    with pytest.raises(ValueError):
        dice(a, np.zeros(4))


def test_brain_points_lattice():
    m = np.zeros((20, 20, 20), np.uint8)
    m[4:12, 4:12, 4:12] = 1  # lattice 0, 4, 8, ... hits indices 4 and 8 along each axis
    pts = brain_points(_img(m, 1.0, (10.0, 20.0, 30.0)), step_mm=4.0)
    assert pts.shape == (8, 3)
    assert sorted({tuple(p) for p in pts})[0] == (14.0, 24.0, 34.0)
    # 2 mm voxels: stride 2 voxels -> indices 4, 6, 8, 10 in 4..11 -> 4 per axis
    assert brain_points(_img(m, 2.0), step_mm=4.0).shape == (64, 3)
    assert brain_points(_img(np.zeros((5, 5, 5))), 4.0).shape == (0, 3)


def test_read_pose(tmp_path):
    m = _rigid(10.0, (1.0, -2.0, 3.5))
    assert np.allclose(read_pose(_write_pose(tmp_path / "pose.txt", m)), m)
    (tmp_path / "bad.txt").write_text("1 0 0\n0 1 0\n0 0 1\n")
    with pytest.raises(ValueError):
        read_pose(tmp_path / "bad.txt")


def test_true_scanner_points_affine_field(tmp_path):
    # template -> subject: scaled about the origin and shifted; subject -> scanner: rigid pose
    f = np.diag([1.1, 0.9, 1.05, 1.0])
    f[:3, 3] = (2.0, -3.0, 1.0)
    pose = _rigid(15.0, (5.0, 0.0, -4.0))
    field = _write_field(tmp_path / "field.nii.gz", f)
    pts = np.array([[0.0, 0.0, 0.0], [5.3, -2.1, 7.7], [-6.0, 12.5, 20.0]])
    expected = nib.affines.apply_affine(pose @ f, pts)
    got = true_scanner_points(pts, field, _write_pose(tmp_path / "pose.txt", pose))
    assert np.allclose(got, expected, atol=1e-4)
    assert np.allclose(true_scanner_points(pts, field, pose), expected, atol=1e-4)


def test_tre_identity_and_translation(tmp_path):
    pts = np.array([[0.0, 0.0, 0.0], [10.0, -5.0, 3.0], [-20.0, 7.0, 1.0]])
    ident = _write_translation(tmp_path / "id.mat", (0.0, 0.0, 0.0))
    for chain in ([ident], []):
        out = tre(pts, chain, pts)
        assert set(out) == {"tre_mean_mm", "tre_median_mm", "tre_p95_mm", "tre_max_mm"}
        assert out["tre_max_mm"] == pytest.approx(0.0, abs=1e-6)
    # LPS translation (+3, -4, 0): fixed point p -> p + t in LPS, i.e. p + (-3, +4, 0) in RAS
    shift = _write_translation(tmp_path / "shift.mat", (3.0, -4.0, 0.0))
    assert tre(pts, [shift], pts)["tre_mean_mm"] == pytest.approx(5.0, abs=1e-5)
    assert tre(pts, [shift], pts + np.array([-3.0, 4.0, 0.0]))["tre_max_mm"] == pytest.approx(0.0, abs=1e-5)
    assert tre(pts, [shift], pts + np.array([3.0, -4.0, 0.0]))["tre_mean_mm"] == pytest.approx(10.0, abs=1e-5)
    # chains compose: two translations add up
    assert tre(pts, [shift, shift], pts + np.array([-6.0, 8.0, 0.0]))["tre_max_mm"] == pytest.approx(0.0, abs=1e-5)


def test_truth_on_grid_follows_chain_pose_and_field(tmp_path):
    """Each grid voxel takes the truth label where its image sampled the anatomy: p -> chain -> pose^-1 -> field."""
    labels = np.zeros((16, 6, 6), np.uint8)
    labels[:, :, :] = np.arange(1, 17, dtype=np.uint8)[:, None, None]  # label = 1 + x voxel index (x = mm)
    truth = _img(labels)
    grid = _img(np.zeros((16, 6, 6), np.float32))
    # chain: LPS (-3, 0, 0) = RAS +3 mm in x; pose: subject -> scanner +2 mm in x; field: subject -> template -1 mm
    chain = [_write_translation(tmp_path / "t.mat", (-3.0, 0.0, 0.0))]
    pose = np.eye(4)
    pose[0, 3] = 2.0
    shift = np.eye(4)
    shift[0, 3] = -1.0
    field = _write_field(tmp_path / "field.nii.gz", shift, shape=(8, 4, 4), origin=(-4.0, -4.0, -4.0))
    got = truth_on_grid(grid, truth, chain, _write_pose(tmp_path / "pose.txt", pose), field)
    # x -> x + 3 - 2 - 1 = x: the same label; without the chain, x - 3 (0 where that leaves the truth)
    np.testing.assert_array_equal(got, labels)
    expected = np.where(np.arange(16) >= 3, np.arange(16) - 2, 0).astype(np.uint8)[:, None, None]
    np.testing.assert_array_equal(truth_on_grid(grid, truth, [], pose, field), np.broadcast_to(expected, labels.shape))


def test_tre_chain_order(tmp_path):
    """[A, B] maps template points through A first, then B (as the template -> T1w -> T2w chains need)."""
    import ants

    pts = np.array([[1.0, 2.0, 3.0], [-4.0, 0.5, 2.0]])
    shift = _write_translation(tmp_path / "shift.mat", (10.0, 0.0, 0.0))
    rot_lps = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 degrees about z
    with scoped_tmpdir():
        rot = ants.create_ants_transform(transform_type="AffineTransform", dimension=3, matrix=rot_lps)
        ants.write_transform(rot, str(tmp_path / "rot.mat"))
    lps = pts * [-1.0, -1.0, 1.0]
    expected = ((lps + np.array([10.0, 0.0, 0.0])) @ rot_lps.T) * [-1.0, -1.0, 1.0]
    assert tre(pts, [shift, str(tmp_path / "rot.mat")], expected)["tre_max_mm"] == pytest.approx(0.0, abs=1e-5)
    assert tre(pts, [str(tmp_path / "rot.mat"), shift], expected)["tre_max_mm"] > 1.0


def test_alignment_quality():
    rng = np.random.default_rng(0)
    x = rng.normal(100, 10, (10, 10, 10))
    tmask = np.zeros((10, 10, 10), np.uint8)
    tmask[2:8, 2:8, 2:8] = 1  # 216 voxels
    smask = np.zeros_like(tmask)
    smask[2:8, 2:8, 5:9] = 1  # 144 voxels, 108 shared
    q = alignment_quality(_img(x), _img(x), _img(tmask), _img(smask))
    assert q["ncc"] == pytest.approx(1.0)
    assert q["nmi"] == pytest.approx(2.0)
    assert q["mask_dice"] == pytest.approx(2 * 108 / (216 + 144))
    q2 = alignment_quality(_img(-2 * x + 5), _img(x), _img(tmask), _img(smask))
    assert q2["ncc"] == pytest.approx(-1.0)
    q3 = alignment_quality(_img(rng.normal(0, 1, x.shape)), _img(x), _img(tmask), _img(tmask))
    assert abs(q3["ncc"]) < 0.3 and 1.0 <= q3["nmi"] < q["nmi"]
    with pytest.raises(ValueError):
        alignment_quality(_img(x), _img(x, zoom=2.0), _img(tmask), _img(smask))


def test_bias_variation_hand_values():
    img, seg = _wm_case()
    # eroded white matter = the 3^3 core (the 1000 shell and the -50 grey matter are excluded)
    assert bias_variation(_img(img), _img(seg), min_voxels=10, sigma_mm=0) == pytest.approx(CV_HAND)
    # too small after erosion -> the whole white matter: 27 core + 98 shell voxels
    vals = np.concatenate([[90.0] * 13 + [110.0] * 13 + [100.0], [1000.0] * 98])
    assert bias_variation(_img(img), _img(seg), min_voxels=100, sigma_mm=0) == pytest.approx(vals.std() / vals.mean())
    assert np.isnan(bias_variation(_img(img), _img(seg), wm_label=9))


def test_bias_variation_low_pass_sees_the_field_not_the_noise():
    # a WM slab: a smooth 80..120 ramp along x (bias) and +-20 alternating voxel noise
    x = np.arange(40, dtype=float)
    ramp = 80 + 40 * x / 39
    noise = np.where(np.indices((40, 12, 12)).sum(0) % 2 == 0, 20.0, -20.0)
    img = ramp[:, None, None] + noise
    seg = np.full(img.shape, 3, dtype=np.int16)
    flat = bias_variation(_img(100 + noise), _img(seg), sigma_mm=4.0)
    biased = bias_variation(_img(img), _img(seg), sigma_mm=4.0)
    # the smoothed image keeps the ramp: CV ~ sd(ramp) / mean(ramp) = 11.8 / 100 (edges smooth it a little)
    assert biased == pytest.approx(np.std(ramp) / np.mean(ramp), rel=0.15)
    assert flat < 0.02 < 0.1 < biased


def test_alignment_figure_axes():
    shape = (20, 24, 16)
    rng = np.random.default_rng(1)
    t = np.zeros(shape)
    t[4:16, 5:19, 3:13] = 100.0
    mask = (t > 0).astype(np.uint8)
    images = {s: _img(t + rng.normal(0, 5, shape), 2.0) for s in ("T1w", "T2w", "FLAIR")}
    fig = alignment_figure(images, _img(t, 2.0), _img(mask, 2.0), "sub-X ses-Y rigidlinear")
    assert len(fig.axes) == 9
    assert fig.axes[0].get_title() == "axial" and fig.axes[3].get_ylabel() == "T2w"
    fig.savefig(io.BytesIO(), format="png", dpi=40)
    with pytest.raises(ValueError):
        alignment_figure({"T1w": _img(t, 1.0)}, _img(t, 2.0), _img(mask, 2.0), "x")


def test_session_accuracy_rows(tmp_path):
    tm = np.zeros((10, 10, 10), np.uint8)
    tm[3:7, 3:7, 3:7] = 1
    nib.save(_img(tm, 2.0), tmp_path / "tmask.nii.gz")  # template points within 6..13 mm: inside the field grid
    field = _write_field(tmp_path / "field.nii.gz", np.eye(4))  # subject frame = template frame
    poses = {
        "T1w": _write_pose(tmp_path / "t1.txt", np.eye(4)),
        "T2w": _write_pose(tmp_path / "t2.txt", _rigid(0.0, (3.0, 0.0, 0.0))),
    }
    ident = _write_translation(tmp_path / "id.mat", (0.0, 0.0, 0.0))
    t2 = _write_translation(tmp_path / "t2.mat", (-3.0, 0.0, 0.0))  # RAS +3 x
    off = _write_translation(tmp_path / "off.mat", (0.0, 0.0, 2.0))
    chains = {"rigidlinear": {"T1w": [ident], "T2w": [ident, t2]}, "bad": {"T1w": [off]}}
    # brain masks: GT on a 2 mm grid (4^3 voxels at 4..10 mm), estimate on 1 mm covering z 4..7 only
    gt = np.zeros((10, 10, 10), np.uint8)
    gt[2:6, 2:6, 2:6] = 1
    est = np.zeros((20, 20, 20), np.uint8)
    est[4:12, 4:12, 4:8] = 1
    nib.save(_img(gt, 2.0), tmp_path / "gt.nii.gz")
    nib.save(_img(est, 1.0), tmp_path / "est.nii.gz")
    img, seg = _wm_case(shell=100.0)
    nib.save(_img(img), tmp_path / "raw.nii.gz")
    nib.save(_img(np.where(seg == 3, 500.0, 0.0)), tmp_path / "cor.nii.gz")
    nib.save(_img(seg), tmp_path / "dseg.nii.gz")
    table = session_accuracy(
        subject="sub-X",
        session="clinical",
        template_mask=str(tmp_path / "tmask.nii.gz"),
        template_to_subject_field=field,
        poses=poses,
        chains=chains,
        brain_mask=str(tmp_path / "est.nii.gz"),
        gt_brain_mask=str(tmp_path / "gt.nii.gz"),
        raw={"T1w": str(tmp_path / "raw.nii.gz")},
        corrected={"T1w": str(tmp_path / "cor.nii.gz")},
        gt_dseg={"T1w": str(tmp_path / "dseg.nii.gz")},
        step_mm=2.0,
        bias_sigma_mm=0.0,
    )
    assert list(table.columns) == ["subject", "session", "metric", "prep", "sequence", "value"]
    assert len(table) == 3 * 3 + 3 + 2
    assert (table["subject"] == "sub-X").all() and (table["session"] == "clinical").all()
    v = table.set_index(["metric", "prep", "sequence"])["value"]
    for seq in ("T1w", "T2w"):
        for m in ("tre_mean_mm", "tre_median_mm", "tre_p95_mm"):
            assert v[(m, "rigidlinear", seq)] == pytest.approx(0.0, abs=1e-4)
    assert v[("tre_mean_mm", "bad", "T1w")] == pytest.approx(2.0, abs=1e-4)
    assert v[("mask_dice", "", "T1w")] == pytest.approx(2 * 32 / (64 + 32))
    assert v[("mask_volume_ml", "", "T1w")] == pytest.approx(8 * 8 * 4 / 1000)
    assert v[("gt_volume_ml", "", "T1w")] == pytest.approx(64 * 8 / 1000)
    # default min_voxels (64) > the 27-voxel eroded core: the whole 5^3 WM (98 shell voxels at 100) is used
    assert v[("bias_cv_raw", "", "T1w")] == pytest.approx(np.sqrt(2600 / 125) / 100)  # bias_sigma_mm=0: plain CV
    assert v[("bias_cv_corrected", "", "T1w")] == pytest.approx(0.0)


def test_summarise_accuracy_hand_values():
    rows = [
        ("sub-1", "clinical", 1.0),
        ("sub-2", "clinical", 2.0),
        ("sub-3", "clinical", 3.0),
        ("sub-1", "research", 4.0),
        ("sub-2", "research", 6.0),
    ]
    table = pd.DataFrame(
        [(s, e, "tre_mean_mm", "affine", "T1w", x) for s, e, x in rows],
        columns=["subject", "session", "metric", "prep", "sequence", "value"],
    )
    out = summarise_accuracy(table)
    assert len(out) == 2
    r = out.set_index("session")
    assert (r.loc["clinical", "n"], r.loc["clinical", "mean"], r.loc["clinical", "sd"]) == (3, 2.0, 1.0)
    assert r.loc["research", "mean"] == 5.0 and r.loc["research", "sd"] == pytest.approx(np.sqrt(2))
    assert (out["protocol"] == "").all()
    protocols = {"sub-1_clinical": "P1", "sub-2_clinical": "P1", "sub-3_clinical": "P2", "sub-1": "R", "sub-2": "R"}
    out = summarise_accuracy(table, protocols).set_index(["session", "protocol"])
    assert len(out) == 2 + 3
    assert out.loc[("clinical", "P1"), "mean"] == 1.5
    assert out.loc[("clinical", "P1"), "sd"] == pytest.approx(np.sqrt(0.5))
    assert out.loc[("clinical", "P2"), "n"] == 1 and np.isnan(out.loc[("clinical", "P2"), "sd"])
    assert out.loc[("research", "R"), "mean"] == 5.0
    assert summarise_accuracy(table.iloc[:0]).empty


def _bias_variation_full_image(x: np.ndarray, seg: np.ndarray, zooms: tuple[float, ...], sigma_mm: float) -> float:
    """The filter over the whole image (bias_variation before it cropped to the white matter's reach)."""
    from scipy import ndimage as ndi

    wm = seg == 3
    eroded = ndi.binary_erosion(wm, iterations=1)
    sel = eroded if int(eroded.sum()) >= 64 else wm
    sigma = sigma_mm / np.asarray(zooms, float)
    weight = ndi.gaussian_filter(sel.astype(np.float64), sigma)
    local = ndi.gaussian_filter(np.where(sel, x, 0).astype(np.float64), sigma)
    vals = local[sel] / np.maximum(weight[sel], 1e-9)
    return float(vals.std() / vals.mean())


@pytest.mark.parametrize(
    "box",
    [
        (slice(25, 33), slice(20, 29), slice(12, 18)),  # widened box inside the image: the crop is a true crop
        (slice(0, 12), slice(30, 50), slice(20, 30)),  # white matter on the border (axes 0, 1 and 2)
        (slice(5, 55), slice(3, 47), slice(2, 28)),  # reach clipped by the border on every side
    ],
)
def test_bias_variation_crop_equals_the_whole_image_filter(box):
    rng = np.random.default_rng(3)
    shape, zooms = (60, 50, 30), (1.0, 1.25, 2.0)
    x = rng.uniform(50, 150, shape)
    seg = np.zeros(shape, np.int16)
    seg[box] = np.where(rng.random(seg[box].shape) < 0.8, 3, 2)  # an irregular white matter inside ``box``
    img = nib.Nifti1Image(x, np.diag([*zooms, 1.0]))
    dseg = nib.Nifti1Image(seg, img.affine)
    for sigma_mm in (4.0, 10.0):
        assert bias_variation(img, dseg, sigma_mm=sigma_mm) == _bias_variation_full_image(x, seg, zooms, sigma_mm)
    # several images over one white matter (its filtered weights shared): the values of separate calls
    other = nib.Nifti1Image(x * np.linspace(0.8, 1.2, shape[0])[:, None, None], img.affine)
    within = rng.random(shape) < 0.9
    separate = [bias_variation(i, dseg, sigma_mm=6.0, within=within) for i in (img, other)]
    assert bias_variations([img, other], dseg, sigma_mm=6.0, within=within) == separate
