"""Preprocessing (paper 3.1): input checks, bias correction, grids, registration, resampling, the session steps."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from brainsr.base.arrays import dice
from brainsr.base.images import ImageInputError, load_checked, load_scan, scoped_tmpdir
from brainsr.config import ConfigError, validate_config
from brainsr.preprocess.bias import correct_bias, head_mask
from brainsr.preprocess.pipeline import (
    initial_key,
    prep_label,
    prepare_session,
    register_keys,
    register_session,
    resample_session,
    transform_keys,
)
from brainsr.preprocess.qc import bias_variation, brain_points, read_pose, tre, true_scanner_points
from brainsr.preprocess.register import invert_linear, map_points, register_linear
from brainsr.preprocess.resample import _lanczos_weights, resample, rescale, sinc_resample
from brainsr.preprocess.template import analysis_grid, iso_grid, resample_to_grid, write_grid

SEQS = ("T1w", "T2w", "FLAIR")
#: The paper's percentile scaling, without a core (the chain test's phantom is small).
PERCENTILE = {"rescale": "percentile", "rescale_percentiles": [0.5, 99.5], "rescale_core_mm": 0, "rescale_wm_level": {}}


KEY_EXT = (("affinemi", ".mat"), ("warp", ".nii.gz"))


def _phantom(shape=(40, 44, 36), zoom=3.0, shift=(0.0, 0.0, 0.0)) -> nib.Nifti1Image:
    """Head phantom: bright scalp shell, dark skull, brain ellipsoid with a brighter core; world-centred."""
    grid = np.indices(shape).astype(float)
    centre = (np.asarray(shape) - 1) / 2 + np.asarray(shift) / zoom
    r = np.sqrt(sum(((g - c) / (s * 0.42)) ** 2 for g, c, s in zip(grid, centre, shape, strict=True)))
    data = np.where(r < 1.0, 300.0, 0.0) + np.where(r < 0.85, -250.0, 0.0) + np.where(r < 0.75, 400.0, 0.0)
    data += np.where(r < 0.45, 150.0, 0.0)
    affine = np.diag([zoom, zoom, zoom, 1.0])
    affine[:3, 3] = -zoom * (np.asarray(shape) - 1) / 2
    return nib.Nifti1Image(data.astype(np.float32), affine)


# ---------------------------------------------------------------------------------------------------- input checks
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"not an image at all"), "cannot be read as NIfTI"),
        (lambda p: p.write_bytes(gzip.compress(b"\x00" * 100)[:30]), "cannot be read as NIfTI"),
        (lambda p: nib.save(nib.Nifti1Image(np.ones((4, 4, 4, 2), np.float32), np.eye(4)), p), "expected a 3D image"),
        (lambda p: nib.save(nib.Nifti1Image(np.ones((8, 8), np.float32), np.eye(4)), p), "expected a 3D image"),
        (lambda p: nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), p), "all voxels are zero"),
        (lambda p: nib.save(nib.Nifti1Image(np.full((4, 4, 4), 3, np.float32), np.eye(4)), p), "constant"),
        (lambda p: nib.save(nib.Nifti1Image(_nan_data(), np.eye(4)), p), "NaN or Inf"),
        (lambda p: nib.save(_with_sform(np.diag([1, 0, 1, 1.0])), p), "degenerate"),
        (lambda p: nib.save(_with_sform(_sheared()), p), "shear"),
    ],
)
def test_load_checked_names_file_and_problem(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "sub-X_T1w.nii.gz"
    make(path)
    with pytest.raises(ImageInputError, match=message) as err:
        load_checked(path)
    assert str(path) in str(err.value)


def _ramp() -> np.ndarray:
    return np.arange(64, dtype=np.float32).reshape(4, 4, 4)


def _nan_data() -> np.ndarray:
    data = _ramp()
    data[1, 1, 1] = np.nan
    return data


def _with_sform(affine: np.ndarray) -> nib.Nifti1Image:
    """An image whose only spatial transform is the sform ``affine`` (which may be degenerate)."""
    img = nib.Nifti1Image(_ramp(), np.eye(4))
    img.set_qform(None, code=0)
    img.set_sform(affine, code=1)
    return img


def _sheared() -> np.ndarray:
    affine = np.eye(4)
    affine[0, 1] = 0.5
    return affine


def test_load_checked_missing_file_and_clean_header(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError, match="does not exist"):
        load_checked(tmp_path / "nope.nii.gz")
    img = nib.Nifti1Image(_ramp(), np.eye(4))
    img.header["descrip"] = b"Patient John Doe"
    nib.save(img, tmp_path / "a.nii.gz")
    loaded = load_checked(tmp_path / "a.nii.gz")
    assert loaded.header["descrip"].tobytes().strip(b"\x00") == b""
    assert loaded.get_fdata().dtype == np.float64 and loaded.shape == (4, 4, 4)


def _head(shape=(40, 44, 36), zoom=3.0) -> nib.Nifti1Image:
    """The phantom stored as a scanner writes it: int16 with a scale factor, qform and sform set."""
    img = _phantom(shape, zoom)
    stored = nib.Nifti1Image(img.get_fdata(), img.affine)
    stored.set_data_dtype(np.int16)
    stored.set_qform(img.affine, code=1)
    return stored


def _save_with_pixdim(img: nib.Nifti1Image, path: Path, pixdim: tuple[float, float, float]) -> None:
    """Save uncompressed, then write the voxel sizes into the header bytes (nibabel would mend zero ones)."""
    nib.save(img, path)
    with open(path, "r+b") as fh:
        fh.seek(80)  # pixdim[1:4] of the NIfTI-1 header (little-endian, as nibabel writes here)
        fh.write(struct.pack("<3f", *pixdim))


def _no_orientation(path: Path) -> None:
    img = _head()
    img.set_qform(None, code=0)
    img.set_sform(None, code=0)
    _save_with_pixdim(img, path, (0.0, 0.0, 0.0))


def _zero_slice_thickness(path: Path) -> None:
    _save_with_pixdim(_head(), path, (3.0, 3.0, 0.0))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_no_orientation, r"header has no usable orientation \(qform_code and sform_code are both 0\)"),
        (_zero_slice_thickness, r"voxel sizes \[3\.0, 3\.0, 0\.0\] in the header are not finite and positive"),
        (lambda p: nib.save(_head(shape=(3, 3, 3)), p), r"volume \(3, 3, 3\) voxels, .* too small to hold a head"),
        (lambda p: nib.save(_head(zoom=1.0), p), r"field of view \[40\.0, 44\.0, 36\.0\] mm is too small to hold"),
    ],
)
def test_load_scan_refuses_unusable_geometry_naming_the_file(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "sub-X_T1w.nii"
    make(path)
    with pytest.raises(ImageInputError, match=message) as err:
        load_scan(path)
    assert err.value.path == str(path)


def test_load_scan_is_independent_of_storage_order(tmp_path: Path) -> None:
    """LPS, big-endian int16, uncompressed: after reorientation to RAS+ the same array on the same grid."""
    original = _head()
    nib.save(original, tmp_path / "ras.nii.gz")
    lps = original.as_reoriented(nib.orientations.axcodes2ornt(("L", "P", "S")))
    assert nib.aff2axcodes(lps.affine) == ("L", "P", "S")
    stored = nib.Nifti1Image(np.asarray(lps.dataobj), lps.affine, nib.Nifti1Header(endianness=">"))
    stored.set_data_dtype(np.int16)
    stored.set_qform(lps.affine, code=1)
    nib.save(stored, tmp_path / "lps.nii")
    assert nib.load(tmp_path / "lps.nii").get_data_dtype().str == ">i2"
    a, b = load_scan(tmp_path / "ras.nii.gz"), load_scan(tmp_path / "lps.nii")
    assert nib.aff2axcodes(b.affine) == ("R", "A", "S") and b.shape == a.shape
    assert np.array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj))
    assert np.array_equal(a.affine, b.affine)
    assert np.asarray(b.dataobj).flags.c_contiguous and np.asarray(b.dataobj).dtype == np.float32


def test_scoped_tmpdir_restores_environment_and_removes_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    with scoped_tmpdir() as scoped:
        assert os.environ["TMPDIR"] == str(scoped)
        (scoped / "leftover.mat").write_text("x")
    assert os.environ["TMPDIR"] == str(tmp_path)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------- grids
def test_analysis_grid_covers_mask_box_with_margin() -> None:
    mask = np.zeros((20, 20, 20), np.uint8)
    mask[5:15, 6:12, 4:10] = 1
    img = nib.Nifti1Image(mask, np.diag([2.0, 2.0, 2.0, 1.0]))
    affine, shape = analysis_grid(img, spacing_mm=1.0, margin_mm=3.0)
    # box in mm: x 10..28, y 12..22, z 8..18; grown by 3 mm on each side
    assert np.allclose(affine[:3, 3], [7, 9, 5])
    assert shape == (25, 17, 17)


def test_iso_grid_spans_field_of_view() -> None:
    img = nib.Nifti1Image(np.zeros((10, 10, 4), np.float32), np.diag([1.0, 1.0, 5.0, 1.0]))
    affine, shape = iso_grid(img, 2.0)
    assert shape == (5, 5, 10)
    # outer corners coincide: native voxel -0.5 and iso voxel -0.5 map to the same world point
    assert np.allclose(affine @ [-0.5, -0.5, -0.5, 1], img.affine @ [-0.5, -0.5, -0.5, 1])


def test_resample_to_grid_identity() -> None:
    img = _phantom()
    out = resample_to_grid(img, img.affine, img.shape, order=1)
    assert np.allclose(out.get_fdata(), img.get_fdata(), atol=1e-4)


# ---------------------------------------------------------------------------------------------------- bias
def test_head_mask_finds_head() -> None:
    img = _phantom()
    mask = head_mask(img)
    truth = img.get_fdata() > 0
    truth = ndimage.binary_fill_holes(truth | (ndimage.distance_transform_edt(~truth) < 0))
    assert dice(mask, ndimage.binary_fill_holes(img.get_fdata() != 0)) > 0.9


def test_n4_reduces_a_smooth_bias_field() -> None:
    img = _phantom(shape=(48, 52, 44), zoom=3.0)
    x = np.indices(img.shape)[0] / img.shape[0]
    field = 0.7 + 0.6 * x  # 70 % .. 130 % left to right
    noisy = img.get_fdata() * field
    biased = nib.Nifti1Image(noisy.astype(np.float32), img.affine)
    corrected, info = correct_bias(biased, fit_mm=6.0)
    core = img.get_fdata() == 450.0  # the "white matter" ring, uniform without bias
    seg = nib.Nifti1Image(np.where(core, 3, 0).astype(np.int16), img.affine)
    before = bias_variation(biased, seg, sigma_mm=6.0)
    after = bias_variation(corrected, seg, sigma_mm=6.0)
    assert info["engine"] == "n4" and info["seconds"] > 0
    assert after < 0.5 * before


def test_bias_engine_errors(monkeypatch) -> None:
    monkeypatch.delenv("FSLDIR", raising=False)
    with pytest.raises(RuntimeError, match=r"\$FSLDIR"):
        correct_bias(_phantom(), "fast")
    with pytest.raises(ValueError, match="unknown bias engine"):
        correct_bias(_phantom(), "n5")


FAKE_FAST = """#!{python}
# stand-in for FSL fast -B: writes <out>_restore.nii.gz, the input doubled
import sys
import nibabel as nib
import numpy as np
assert "-B" in sys.argv
out = [a for a in sys.argv if a.startswith("--out=")][0][len("--out="):]
img = nib.load(sys.argv[-1])
nib.Nifti1Image(np.asarray(img.dataobj) * 2.0, img.affine).to_filename(out + "_restore.nii.gz")
"""


def test_fast_engine_runs_through_fslpy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import stat
    import sys

    bindir = tmp_path / "fsl" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "fast").write_text(FAKE_FAST.format(python=sys.executable))
    (bindir / "fast").chmod(0o755 | stat.S_IXUSR)
    monkeypatch.setenv("FSLDIR", str(tmp_path / "fsl"))
    img = _phantom()
    out, info = correct_bias(img, "fast")
    assert info["engine"] == "fast"
    assert np.allclose(np.asarray(out.dataobj), 2.0 * np.clip(img.get_fdata(), 0, None), atol=1e-3)


# ---------------------------------------------------------------------------------------------------- registration
def test_register_linear_mi_recovers_translation_and_inverse(tmp_path: Path) -> None:
    fixed = _phantom()
    moving = _phantom(shift=(6.0, -4.5, 3.0))  # RAS mm
    info = register_linear(fixed, moving, "rigid", "mi", tmp_path / "x.mat", level_mm=3.0, iterations=(100, 50))
    assert info["seconds"] > 0
    pts = brain_points(nib.Nifti1Image((fixed.get_fdata() > 0).astype(np.uint8), fixed.affine), 9.0)
    lps = pts * [-1, -1, 1]
    mapped = map_points(lps, [str(tmp_path / "x.mat")])
    shift_lps = np.array([-6.0, 4.5, 3.0])
    assert np.abs(mapped - lps - shift_lps).mean() < 1.0
    invert_linear(tmp_path / "x.mat", tmp_path / "inv.mat")
    back = map_points(mapped, [str(tmp_path / "inv.mat")])
    assert np.abs(back - lps).max() < 1e-3


def test_register_linear_rejects_unknown_alignment(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rigid or affine"):
        register_linear(_phantom(), _phantom(), "warp", "mi", tmp_path / "x.mat")
    with pytest.raises(ValueError, match="unknown registration cost"):
        register_linear(_phantom(), _phantom(), "rigid", "ncc", tmp_path / "x.mat")


# ---------------------------------------------------------------------------------------------------- resampling
def test_rescale_hand_computed() -> None:
    data = np.array([0.0, 10.0, 20.0, 30.0, 40.0, 1000.0]).reshape(1, 2, 3)
    mask = np.array([0, 1, 1, 1, 1, 1], bool).reshape(1, 2, 3)
    out, info = rescale(data, mask, (0.0, 75.0))
    # in-mask values 10, 20, 30, 40, 1000: 0th percentile 10, 75th percentile 40
    assert info["low"] == 10.0 and info["high"] == 40.0
    assert np.allclose(out.ravel(), [0.0, 0.0, 1 / 3, 2 / 3, 1.0, 1.0])
    with pytest.raises(ValueError, match="empty"):
        rescale(data, np.zeros_like(mask), (0.0, 100.0))


def test_resample_identity_and_interpolations() -> None:
    img = _phantom()
    for interpolation in ("linear", "sinc", "bspline", "nearest"):
        out = resample(img, img, [], interpolation)
        assert np.abs(out.get_fdata() - img.get_fdata()).max() < 1.0
    with pytest.raises(ValueError, match="unknown interpolation"):
        resample(img, img, [], "cubic")


def test_lanczos_weights_by_hand() -> None:
    # radius 3, taps at offsets -2..3 from the base index; fraction 0.5: x = 2.5, 1.5, 0.5, -0.5, -1.5, -2.5 and
    # w(x) = sinc(x) sinc(x / 3): sin(pi x) / (pi x) * sin(pi x / 3) / (pi x / 3)
    x = np.array([2.5, 1.5, 0.5, -0.5, -1.5, -2.5])
    hand = [np.sin(np.pi * v) / (np.pi * v) * np.sin(np.pi * v / 3) / (np.pi * v / 3) for v in x]
    assert np.allclose(_lanczos_weights(np.array([0.5]))[0], hand)
    assert np.allclose(_lanczos_weights(np.array([0.0]))[0], [0, 0, 1, 0, 0, 0])  # on a voxel: that voxel


def test_sinc_resample_equals_ants_sinc_in_the_mask(tmp_path: Path) -> None:
    """The own windowed sinc gives ANTs' values at the voxels asked for (rotation + shear + shift through two
    transforms, an anisotropic source whose field of view the grid overruns: border taps and outside points)."""
    import ants

    rng = np.random.default_rng(3)
    src = nib.Nifti1Image(
        ndimage.gaussian_filter(rng.random((20, 18, 7)), 1.0).astype(np.float32) * 100, np.diag([1.2, 1.0, 3.0, 1])
    )
    grid = nib.Nifti1Image(np.zeros((26, 22, 24), np.float32), nib.affines.from_matvec(np.eye(3), [-2, -1, -1]))
    paths = []
    for name, matrix, shift in (
        ("a.mat", [[0.98, 0.17, 0.0], [-0.17, 0.98, 0.05], [0.0, -0.05, 1.02]], [1.5, -0.7, 2.2]),
        ("b.mat", [[1.0, 0.0, 0.1], [0.0, 0.95, 0.0], [0.0, 0.0, 1.0]], [-0.4, 0.3, -1.1]),
    ):
        tx = ants.create_ants_transform(
            transform_type="AffineTransform", dimension=3, matrix=np.array(matrix), translation=shift
        )
        ants.write_transform(tx, str(tmp_path / name))
        paths.append(str(tmp_path / name))
    within = np.zeros(grid.shape, bool)
    within[1:-1, 2:, ::2] = True
    ours = np.asarray(sinc_resample(src, grid, paths, within).dataobj)
    theirs = np.asarray(resample(src, grid, paths, "sinc").dataobj)
    assert np.abs(ours - theirs)[within].max() < 1e-3
    assert (ours[~within] == 0).all() and np.abs(theirs[within]).max() > 10
    # resample() takes this route when told which voxels are needed
    assert np.array_equal(np.asarray(resample(src, grid, paths, "sinc", within=within).dataobj), ours)


# ---------------------------------------------------------------------------------------------------- labels, config
def test_prep_labels_and_transform_keys() -> None:
    variants = {"linear": {"interpolation": "linear", "cost": "cr"}, "sinc": {"interpolation": "sinc", "cost": "mi"}}
    assert prep_label("affine", "sinc") == "affinesinc" and prep_label("warp", None) == "warp"
    assert transform_keys(["rigid", "affine", "warp"], variants) == [
        "rigidmi",
        "rigidcr",
        "affinemi",
        "affinecr",
        "warp",
    ]
    only_cr = {"linear": variants["linear"]}
    assert transform_keys(["affine", "warp"], only_cr) == ["affinemi", "affinecr", "warp"]
    assert transform_keys(["rigid"], {"sinc": variants["sinc"]}) == ["rigidmi"]
    assert transform_keys(["warp"], only_cr) == ["affinemi", "warp"]
    assert [initial_key(k) for k in ("rigidcr", "affinecr", "affinemi", "warp")] == [
        "rigidmi",
        "affinemi",
        None,
        "affinemi",
    ]


def test_preprocess_config_cross_checks() -> None:
    with pytest.raises(ConfigError, match=r"'preprocess\.build_variants': 'foo' not defined"):
        validate_config({"preprocess": {"build_variants": ["linear", "foo"]}})
    with pytest.raises(ConfigError, match=r"'preprocess\.primary'"):
        validate_config({"preprocess": {"alignments": ["rigid"], "primary": "affinelinear"}})
    with pytest.raises(ConfigError, match="rescale_percentiles"):
        validate_config({"preprocess": {"rescale_percentiles": [99, 1]}})
    with pytest.raises(ConfigError, match="image and mask"):
        validate_config({"preprocess": {"template": {"image": "t.nii.gz"}}})


# ---------------------------------------------------------------------------------------------------- session steps
@pytest.fixture(scope="module")
def session_run(p1_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The three steps on the tiny cohort's clinical session (manual mask = ground truth), scoped TMPDIR."""
    out = tmp_path_factory.mktemp("prep")
    tmpdir = out / "tmp"
    tmpdir.mkdir()
    saved = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmpdir)
    try:
        anat = p1_cohort / "sub-P001" / "ses-clinical" / "anat"
        gt = p1_cohort / "derivatives" / "groundtruth" / "sub-P001" / "ses-clinical" / "anat"
        images = {s: str(anat / f"sub-P001_ses-clinical_{s}.nii.gz") for s in SEQS}
        brains = {s: str(out / f"brain_{s}.nii.gz") for s in SEQS}
        xfm = {s: str(out / f"{s}_to_T1w.mat") for s in SEQS[1:]}
        info = prepare_session(
            images,
            out_brain=brains,
            out_mask=str(out / "mask.nii.gz"),
            out_xfm=xfm,
            bias={"engine": "n4", "fit_mm": 4.0},
            brain={"engine": "morph"},
            manual_mask=str(gt / "sub-P001_ses-clinical_space-T1w_desc-brain_mask.nii.gz"),
            iso_mm=2.0,
            level_mm=2.0,
        )
        from brainsr.preprocess.template import load_template

        tpl, msk = load_template()
        write_grid(out / "tpl.nii.gz", out / "tplmask.nii.gz", tpl, msk, 2.0, 2.0)
        common = dict(brain_t1w=brains["T1w"], mask=str(out / "mask.nii.gz"), template=str(out / "tpl.nii.gz"))
        common["template_mask"] = str(out / "tplmask.nii.gz")
        register_session(**common, key="affinemi", out=str(out / "affinemi.mat"), out_inverse=str(out / "inv.mat"))
        register_session(
            **common,
            key="warp",
            out=str(out / "warp.nii.gz"),
            out_inverse=str(out / "winv.nii.gz"),
            initial=str(out / "affinemi.mat"),
            syn_iterations=(10, 0),
        )
        # the session job's form (images read once for every key) gives the same transforms as one call per key
        again = {k: (str(out / f"again_{k}{e}"), str(out / f"again_{k}_inv{e}")) for k, e in KEY_EXT}
        register_keys(**common, transforms=again, syn_iterations=(10, 0))
        assert Path(again["affinemi"][0]).read_bytes() == (out / "affinemi.mat").read_bytes()
        for path, ref in ((again["warp"][0], "warp.nii.gz"), (again["warp"][1], "winv.nii.gz")):
            assert np.array_equal(np.asarray(nib.load(path).dataobj), np.asarray(nib.load(out / ref).dataobj))
        outs = {}
        for prep, xfm_tpl, interpolation in (("affinesinc", "affinemi.mat", "sinc"), ("warp", "warp.nii.gz", "linear")):
            outs[prep] = {s: str(out / prep / f"{s}.nii.gz") for s in SEQS}
            resample_session(
                brains,
                str(out / "mask.nii.gz"),
                str(out / "tpl.nii.gz"),
                str(out / xfm_tpl),
                xfm,
                interpolation=interpolation,
                intensity=PERCENTILE,
                out_images=outs[prep],
                out_mask=str(out / prep / "mask.nii.gz"),
                prep=prep,
            )
    finally:
        if saved is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved
    return {"out": out, "tmp": tmpdir, "info": info, "outs": outs, "gt": gt, "images": images, "xfm": xfm}


def test_session_steps_leave_no_temporary_files(session_run: dict) -> None:
    assert list(session_run["tmp"].iterdir()) == []


def test_prepare_outputs_are_skull_stripped(session_run: dict) -> None:
    assert session_run["info"]["engine"] == "manual"
    gt = session_run["gt"]
    for seq in SEQS:
        brain_img = nib.load(session_run["out"] / f"brain_{seq}.nii.gz")
        assert nib.aff2axcodes(brain_img.affine) == ("R", "A", "S"), seq  # every output in RAS+ (load_scan)
        brain = brain_img.get_fdata()
        truth_img = nib.as_closest_canonical(nib.load(gt / f"sub-P001_ses-clinical_space-{seq}_desc-brain_mask.nii.gz"))
        assert np.allclose(truth_img.affine, brain_img.affine, atol=1e-3), seq  # origin rounded to 1 um
        truth = truth_img.get_fdata() > 0
        inside = brain > 0
        # nothing outside the (mapped) intracranial mask survives: brain extraction is anonymisation
        assert dice(inside, truth) > 0.9, seq
        assert (inside & ~ndimage.binary_dilation(truth, iterations=2)).sum() == 0, seq
    assert (session_run["out"] / "brain_T1w.json").exists()


def test_resampled_outputs_in_unit_range_and_aligned(session_run: dict, p1_cohort: Path) -> None:
    tpl_mask = nib.load(session_run["out"] / "tplmask.nii.gz")
    for prep, files in session_run["outs"].items():
        for seq, path in files.items():
            data = nib.load(path).get_fdata()
            assert data.min() >= 0 and data.max() <= 1 and data.shape == tpl_mask.shape, (prep, seq)
        mask = nib.load(session_run["out"] / prep / "mask.nii.gz").get_fdata() > 0
        assert dice(mask, tpl_mask.get_fdata() > 0) > 0.85, prep
    # registration accuracy against the ground truth (2 mm cohort, 2 mm grid): a few mm at most
    gt_root = p1_cohort / "derivatives" / "groundtruth" / "sub-P001"
    field = gt_root / "sub-P001_from-MNI152NLin2009cSym_to-subject_mode-image_xfm.nii.gz"
    pts = brain_points(tpl_mask, 8.0)
    for seq in SEQS:
        pose = read_pose(
            gt_root / "ses-clinical" / "anat" / f"sub-P001_ses-clinical_from-subject_to-{seq}_mode-image_xfm.txt"
        )
        truth = true_scanner_points(pts, field, pose)
        chain = [str(session_run["out"] / "affinemi.mat")] + ([] if seq == "T1w" else [session_run["xfm"][seq]])
        assert tre(pts, chain, truth)["tre_mean_mm"] < 3.0, seq
        chain[0] = str(session_run["out"] / "warp.nii.gz")
        assert tre(pts, chain, truth)["tre_mean_mm"] < 3.0, seq


def test_manual_mask_must_not_be_empty(p1_cohort: Path, tmp_path: Path) -> None:
    anat = p1_cohort / "sub-P001" / "ses-research" / "anat"
    ref = nib.load(anat / "sub-P001_ses-research_T1w.nii.gz")
    empty = tmp_path / "mask.nii.gz"
    elsewhere = ref.affine.copy()
    elsewhere[:3, 3] += 1000.0  # a mask of another scan: nothing of it falls on this session's grid
    for data, affine, message in (
        (np.zeros(ref.shape, np.uint8), ref.affine, "image is empty"),
        (np.pad(np.ones((4, 4, 4), np.uint8), 4), elsewhere, "manual brain mask is empty on the session grid"),
    ):
        nib.save(nib.Nifti1Image(data, affine), empty)
        with pytest.raises(ImageInputError, match=message) as err:
            prepare_session(
                {"T1w": str(anat / "sub-P001_ses-research_T1w.nii.gz")},
                out_brain={"T1w": str(tmp_path / "b.nii.gz")},
                out_mask=str(tmp_path / "m.nii.gz"),
                out_xfm={},
                bias={"engine": "n4", "fit_mm": 6.0},
                brain={"engine": "morph"},
                manual_mask=str(empty),
                iso_mm=2.0,
            )
        assert str(empty) in str(err.value)
        assert not (tmp_path / "b.nii.gz").exists() and not (tmp_path / "m.nii.gz").exists()


def test_rescale_percentiles_come_from_the_brain_core() -> None:
    """A bright rim (fat left by brain extraction) must not set the scale: percentiles in the mask less 2 mm."""
    data = np.full((9, 9, 9), 100.0)
    mask = np.zeros(data.shape, bool)
    mask[1:8, 1:8, 1:8] = True
    rim = mask & ~np.pad(np.ones((5, 5, 5), bool), 2)
    data[rim] = 1000.0  # the outer voxel layer of the mask
    data[4, 4, 4] = 200.0
    out, info = rescale(data, mask, (0.0, 100.0), core_mm=1.0)
    # core (distance > 1 mm from outside) = the inner 5^3 block: values 100 .. 200
    assert info["low"] == 100.0 and info["high"] == 200.0 and info["core_mm"] == 1.0
    assert out[4, 4, 4] == 1.0 and out[3, 4, 4] == 0.0 and out[1, 4, 4] == 1.0  # rim clipped to 1
    _, info0 = rescale(data, mask, (0.0, 100.0))
    assert info0["high"] == 1000.0


def test_failed_brain_extraction_names_the_session_image(tmp_path: Path) -> None:
    """A readable head-sized volume of uniform noise: brain extraction leaves an empty mask; the error names the
    session's T1w and nothing is written."""
    t1w = tmp_path / "sub-X_ses-clinical_T1w.nii.gz"
    noise = np.random.default_rng(0).uniform(0, 100, (48, 48, 48)).astype(np.float32)
    nib.save(nib.Nifti1Image(noise, np.diag([2.0, 2.0, 2.0, 1.0])), t1w)
    with pytest.raises(
        ImageInputError, match=r"brain extraction failed: engine 'bet' produced an empty brain mask \(0 ml\)"
    ) as err:
        prepare_session(
            {"T1w": str(t1w)},
            out_brain={"T1w": str(tmp_path / "b.nii.gz")},
            out_mask=str(tmp_path / "m.nii.gz"),
            out_xfm={},
            bias={"engine": "n4", "fit_mm": 6.0},
            brain={"engine": "bet"},
            iso_mm=2.0,
        )
    assert err.value.path == str(t1w) and "manual brain mask" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [t1w.name]
