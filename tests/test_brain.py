"""Brain (intracranial volume) extraction engines on a synthetic head phantom (paper section 3.1)."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage as ndi

from brainsr.base.morphology import dilate_mm
from brainsr.preprocess import brain
from brainsr.preprocess.brain import (
    DEFAULT_ENGINE,
    ENGINES,
    PARAMETERS,
    BrainExtractionError,
    extract_brain,
)

SPACING = 2.0
SHAPE = (80, 96, 84)
#: Fast surface settings for the 2 mm phantom (the defaults are for 1 mm heads).
FAST_BET = {"iterations": 300, "subdivisions": 3}

# intensities (T1w, T2w, FLAIR) of the phantom's tissues
TISSUES = {
    "background": (0.0, 0.0, 0.0),
    "wm": (1.3, 0.6, 1.0),
    "gm": (1.0, 0.9, 1.1),
    "csf": (0.1, 2.0, 0.05),
    "bone": (0.05, 0.1, 0.05),
    "diploe": (0.8, 0.9, 0.8),
    "scalp": (0.9, 1.0, 0.9),
    "eye": (0.1, 2.0, 0.05),
}


def _affine(spacing: float = SPACING, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    aff = np.diag([spacing, spacing, spacing, 1.0])
    aff[:3, 3] = -0.5 * spacing * (np.asarray(shape) - 1)
    return aff


def make_phantom(
    seed: int = 0, affine: np.ndarray | None = None, shape: tuple[int, int, int] = SHAPE, noise: float = 0.04
) -> tuple[dict[str, nib.Nifti1Image], np.ndarray, np.ndarray]:
    """An ellipsoidal head: brain (WM core, GM rim, ventricle), CSF shell, skull (bone-diploe-bone), scalp, eyes.

    Returns the images (T1w, T2w, FLAIR on one grid), the true intracranial mask (brain + CSF) and the eyes.
    """
    affine = _affine() if affine is None else affine
    rng = np.random.default_rng(seed)
    ijk = np.indices(shape).reshape(3, -1).T
    xyz = (ijk @ affine[:3, :3].T + affine[:3, 3]).reshape(*shape, 3)
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    radii = np.array([62.0, 78.0, 58.0])

    def ellipsoid(scale_mm: float, centre: tuple[float, float, float] = (0, 0, 0), r: np.ndarray = radii) -> np.ndarray:
        rr = r + scale_mm
        return ((x - centre[0]) / rr[0]) ** 2 + ((y - centre[1]) / rr[1]) ** 2 + ((z - centre[2]) / rr[2]) ** 2 <= 1

    labels = np.zeros(shape, np.uint8)
    names = list(TISSUES)
    for name, outer in (("scalp", 18.0), ("bone", 12.0), ("diploe", 10.0), ("bone", 6.0), ("csf", 4.0), ("gm", 0.0)):
        labels[ellipsoid(outer)] = names.index(name)
    labels[ellipsoid(-8.0)] = names.index("wm")
    labels[ellipsoid(0.0, (0, 0, 5), np.array([8.0, 20.0, 8.0]))] = names.index("csf")  # ventricle
    for side in (-1, 1):  # eyes in front of the skull, outside the intracranial volume
        labels[ellipsoid(0.0, (side * 30.0, 92.0, -20.0), np.array([11.0, 11.0, 11.0]))] = names.index("eye")
    icv = np.isin(labels, [names.index(n) for n in ("wm", "gm", "csf")]) & ellipsoid(4.0)
    images = {}
    for k, seq in enumerate(("T1w", "T2w", "FLAIR")):
        clean = np.array([TISSUES[n][k] for n in names], np.float32)[labels] * 1000.0
        clean = ndi.gaussian_filter(clean, 0.6)
        noisy = np.hypot(clean + rng.normal(0, noise * 1000, shape), rng.normal(0, noise * 1000, shape))
        images[seq] = nib.Nifti1Image(noisy.astype(np.float32), affine)
    return images, icv, labels == names.index("eye")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float(np.logical_and(a, b).sum()) / float(a.sum() + b.sum())


@pytest.fixture(scope="module")
def phantom() -> tuple[dict[str, nib.Nifti1Image], np.ndarray, np.ndarray]:
    return make_phantom()


@pytest.fixture(scope="module")
def masks(phantom) -> dict[str, nib.Nifti1Image]:
    """Each runnable engine's output on the phantom, computed once."""
    images, _, _ = phantom
    return {engine: _run(images, engine) for engine in ("hybrid", "morph", "bet")}


def _run(images: dict[str, nib.Nifti1Image], engine: str, **params: object) -> nib.Nifti1Image:
    if engine in ("bet", "hybrid"):
        params = {**FAST_BET, **params}
    return extract_brain(images, engine, **params)


def test_engine_names() -> None:
    assert set(ENGINES) == {"deepbet", "hybrid", "bet", "morph", "fsl"}
    assert DEFAULT_ENGINE in ENGINES
    assert set(PARAMETERS) == set(ENGINES)


@pytest.mark.parametrize("engine", ["hybrid", "morph", "bet"])
def test_engine_recovers_intracranial_volume(phantom, masks, engine: str) -> None:
    _, icv, eyes = phantom
    mask = np.asarray(masks[engine].dataobj) > 0
    assert dice(mask, icv) > 0.95, f"{engine}: Dice {dice(mask, icv):.3f}"
    # the eyes are excluded, and almost nothing lies beyond 4 mm of the intracranial volume (skull, scalp)
    assert not (mask & eyes).any()
    assert (mask & ~ndi.binary_dilation(icv, iterations=2)).sum() < 0.01 * mask.sum()


@pytest.mark.parametrize("engine", ["hybrid", "morph", "bet"])
def test_output_is_binary_uint8_on_the_t1w_grid(phantom, masks, engine: str) -> None:
    images, _, _ = phantom
    out = masks[engine]
    assert out.shape == images["T1w"].shape
    np.testing.assert_allclose(out.affine, images["T1w"].affine)
    assert out.get_data_dtype() == np.uint8
    assert set(np.unique(np.asarray(out.dataobj)).tolist()) <= {0, 1}
    assert int(out.header["sform_code"]) > 0


@pytest.mark.parametrize("engine", ["hybrid", "morph", "bet"])
def test_single_sequence_t1w(phantom, engine: str) -> None:
    images, icv, _ = phantom
    out = _run({"T1w": images["T1w"]}, engine)
    mask = np.asarray(out.dataobj) > 0
    assert dice(mask, icv) > 0.9, f"{engine} on T1w only: Dice {dice(mask, icv):.3f}"


def test_oblique_flipped_grid() -> None:
    """World-millimetre logic: a flipped, rotated grid gives the same anatomy."""
    angle = np.deg2rad(20)
    rot = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([-SPACING, SPACING, SPACING])
    aff[:3, 3] = -aff[:3, :3] @ (0.5 * (np.asarray(SHAPE) - 1))
    images, icv, _ = make_phantom(seed=1, affine=aff)
    for engine in ("morph", "bet"):
        mask = np.asarray(_run(images, engine).dataobj) > 0
        assert dice(mask, icv) > 0.93, f"{engine}: Dice {dice(mask, icv):.3f}"


def test_missing_coverage_of_t2w_and_flair(phantom) -> None:
    """Clinical slabs: T2w/FLAIR cover only part of the T1w field of view (zeros after resampling)."""
    images, icv, _ = phantom
    cut = dict(images)
    for seq in ("T2w", "FLAIR"):
        data = np.asarray(images[seq].dataobj).copy()
        data[:, :, :22] = 0  # lowest 44 mm (incl. the bottom of the brain) not acquired
        cut[seq] = nib.Nifti1Image(data, images[seq].affine)
    mask = np.asarray(extract_brain(cut, "morph").dataobj) > 0
    assert dice(mask, icv) > 0.9


def test_empty_image_raises() -> None:
    images, _, _ = make_phantom()
    empty = {"T1w": nib.Nifti1Image(np.zeros(SHAPE, np.float32), images["T1w"].affine)}
    for engine in ("morph", "bet"):
        with pytest.raises(BrainExtractionError):
            _run(empty, engine)


def test_implausible_volume_raises(phantom) -> None:
    images, _, _ = phantom
    with pytest.raises(BrainExtractionError, match=r"implausible intracranial volume of \d+ ml"):
        extract_brain(images, "morph", max_volume_ml=500.0)


def test_small_blob_is_implausible() -> None:
    """A 'head' far smaller than any skull gives a mask below the plausible ICV range."""
    aff = _affine()
    data = np.zeros(SHAPE, np.float32)
    data[35:42, 45:52, 40:47] = 1000.0
    data += np.random.default_rng(3).normal(0, 20, SHAPE).__abs__().astype(np.float32)
    with pytest.raises(BrainExtractionError, match="ml"):
        extract_brain({"T1w": nib.Nifti1Image(data, aff)}, "morph")


def test_fsl_missing_raises(phantom, monkeypatch: pytest.MonkeyPatch) -> None:
    images, _, _ = phantom
    monkeypatch.delenv("FSLDIR", raising=False)
    with pytest.raises(BrainExtractionError, match=r"\$FSLDIR is not set"):
        extract_brain(images, "fsl")


def test_fsl_without_bet_binary_raises(phantom, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    images, _, _ = phantom
    monkeypatch.setenv("FSLDIR", str(tmp_path / "fsl"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(BrainExtractionError, match="does not exist"):
        extract_brain(images, "fsl")


FAKE_BET = """#!{python}
# stand-in for FSL bet: writes <out>_mask.nii.gz, the bright region disconnected from the scalp by erosion
import sys
import nibabel as nib
import numpy as np
from scipy import ndimage as ndi
src, out = sys.argv[1], sys.argv[2]
assert "-m" in sys.argv and "-f" in sys.argv
img = nib.load(src)
d = np.asarray(img.dataobj)
m = ndi.binary_erosion(d > 400, iterations=3)
lab, n = ndi.label(m)
m = lab == np.argmax(np.bincount(lab.ravel())[1:]) + 1
m = ndi.binary_fill_holes(ndi.binary_dilation(m, iterations=3))
nib.Nifti1Image(m.astype(np.uint8), img.affine).to_filename(out + "_mask.nii.gz")
"""


def test_fsl_engine_with_stand_in_bet(phantom, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    images, icv, _ = phantom
    bindir = tmp_path / "fsl" / "bin"
    bindir.mkdir(parents=True)
    bet = bindir / "bet"
    bet.write_text(FAKE_BET.format(python=sys.executable))
    bet.chmod(bet.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("FSLDIR", str(tmp_path / "fsl"))
    mask = np.asarray(extract_brain(images, "fsl").dataobj) > 0
    assert dice(mask, icv) > 0.9


def test_unknown_engine_and_parameter(phantom) -> None:
    images, _, _ = phantom
    with pytest.raises(ValueError, match="unknown brain-extraction engine 'hd-bet'"):
        extract_brain(images, "hd-bet")
    with pytest.raises(TypeError, match="fractional"):
        extract_brain(images, "morph", fractional=0.3)
    # a parameter of another engine is accepted and ignored (one config section serves every engine)
    extract_brain(images, "morph", frac=0.3)


def test_inputs_must_share_the_t1w_grid(phantom) -> None:
    images, _, _ = phantom
    shifted = nib.Nifti1Image(np.asarray(images["T2w"].dataobj), images["T2w"].affine @ np.diag([1, 1, 1.5, 1]))
    with pytest.raises(ValueError, match="not on the T1w grid"):
        extract_brain({**images, "T2w": shifted}, "morph")
    with pytest.raises(ValueError, match="needs a 'T1w'"):
        extract_brain({"T2w": images["T2w"]}, "morph")


def test_nothing_left_in_the_temporary_directory(phantom, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    images, _, _ = phantom
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    bindir = tmp_path / "fsl" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "bet").write_text(FAKE_BET.format(python=sys.executable))
    (bindir / "bet").chmod(0o755)
    monkeypatch.setenv("FSLDIR", str(tmp_path / "fsl"))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    for engine in ("bet", "fsl"):  # fsl writes its input and output files to a temporary directory
        _run(images, engine)
    assert os.listdir(tmp) == []


# ----------------------------------------------------------------------------------------------------- deepbet

#: The deepbet engine's defaults, with the closing switched off where a test needs the exact grown set.
DEEPBET = dict(PARAMETERS["deepbet"])


def _shell_phantom(septum: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1 mm grid: brain = ball r <= 10 (T2w 100, its centre r <= 3.5 at 300: 4 % of the brain, the 'ventricle'),
    CSF shell 10 < r <= 16 (T2w 300), dark bone (20) beyond; ``septum``: the shell's plane x = 24 dark (a 1-voxel
    dural sheet). Returns brain, T2w, shell."""
    r = np.linalg.norm(np.indices((48, 48, 48)) - 24.0, axis=0)
    brain, shell = r <= 10, (r > 10) & (r <= 16)
    if septum:
        shell[24] = False
    t2w = np.where(brain | shell, 100.0, 20.0).astype(np.float32)
    t2w[(r <= 3.5) | shell] = 300.0
    return brain, t2w, shell


def test_t2w_csf_takes_the_bright_shell_within_reach() -> None:
    """Threshold 100 + 0.5 x (300 - 100) = 200: the grown mask is the brain plus the shell voxels within 4 mm of
    it (Euclidean), nothing of the dark bone and nothing farther."""
    brain_mask, t2w, shell = _shell_phantom()
    zooms = np.ones(3)
    within = ndi.distance_transform_edt(~brain_mask) <= 4.0
    grown = brain._t2w_csf(brain_mask, t2w, zooms, {**DEEPBET, "t2_close_steps": 0})
    np.testing.assert_array_equal(grown, brain_mask | (shell & within))
    lower = brain._t2w_csf(brain_mask, t2w, zooms, {**DEEPBET, "t2_close_steps": 0, "t2_fraction": 1.0})
    np.testing.assert_array_equal(lower, brain_mask)  # nothing is above the 98th percentile itself


def test_t2w_csf_closing_bridges_a_dark_sheet() -> None:
    brain_mask, t2w, _ = _shell_phantom(septum=True)
    zooms = np.ones(3)
    open_ = brain._t2w_csf(brain_mask, t2w, zooms, {**DEEPBET, "t2_close_steps": 0})
    closed = brain._t2w_csf(brain_mask, t2w, zooms, DEEPBET)
    sheet = np.zeros_like(brain_mask)  # sheet voxels with grown CSF on both sides, 2.5 mm or less from the brain
    sheet[24] = (ndi.distance_transform_edt(~brain_mask) <= 2.5)[24] & ~brain_mask[24] & open_[23] & open_[25]
    assert sheet.sum() > 100
    assert not (open_ & sheet).any()  # without the closing the growth stops at the sheet...
    assert (closed & sheet).sum() == sheet.sum()  # ...two closing steps bridge it
    assert (closed & ~open_ & ~sheet).sum() < 0.01 * closed.sum()


def test_t2w_csf_keeps_out_fat_that_is_t2w_bright_but_t1w_bright() -> None:
    """CSF shell 10 < r <= 12 and fat 12 < r <= 16 (no bone between: a thin inner table), both T2w-bright; on
    T1w the brain is 100 (its ventricle 10), CSF 10, fat 300. T2w alone grows into the fat; with T1w the growth
    (threshold 1.3 x the brain's median, 130) stops at the CSF, with or without the closing."""
    brain_mask, t2w, shell = _shell_phantom()
    r = np.linalg.norm(np.indices(brain_mask.shape) - 24.0, axis=0)
    csf, fat = shell & (r <= 12), shell & (r > 12)
    t1w = np.where(fat, 300.0, np.where(brain_mask & (r > 3.5), 100.0, 10.0)).astype(np.float32)
    zooms, within = np.ones(3), ndi.distance_transform_edt(~brain_mask) <= 4.0
    open_ = {**DEEPBET, "t2_close_steps": 0}
    np.testing.assert_array_equal(brain._t2w_csf(brain_mask, t2w, zooms, open_), brain_mask | (shell & within))
    np.testing.assert_array_equal(brain._t2w_csf(brain_mask, t2w, zooms, open_, t1w), brain_mask | csf)
    closed = brain._t2w_csf(brain_mask, t2w, zooms, DEEPBET, t1w)
    assert not (closed & fat).any() and (closed & csf).sum() == csf.sum()


class _StandIn:
    """deepbet's BrainExtraction, standing in with a fixed brain mask (or an error)."""

    def __init__(self, mask: np.ndarray | None, affine: np.ndarray) -> None:
        self.mask, self.affine, self.threshold = mask, affine, None

    def run(self, img: nib.Nifti1Image, threshold: float = 0.5, **_: object) -> tuple:
        self.threshold = threshold
        if self.mask is None:
            raise ValueError("attempt to get argmax of an empty sequence")
        return img, nib.Nifti1Image(self.mask.astype(np.uint8), self.affine), 0.0


def test_deepbet_engine_adds_the_outer_csf(phantom, monkeypatch: pytest.MonkeyPatch) -> None:
    """The brain (the phantom's ICV less its 4 mm CSF shell) grown through the T2w-bright CSF gives the ICV back;
    with T1w alone it is dilated by 2 mm."""
    images, icv, _ = phantom
    zooms = np.full(3, SPACING)
    parenchyma = dilate_mm(icv, -4.0, zooms)
    stand_in = _StandIn(parenchyma, images["T1w"].affine)
    monkeypatch.setattr(brain, "_deepbet_model", lambda: stand_in)
    with_t2w = np.asarray(extract_brain(images, "deepbet", threshold=0.4).dataobj) > 0
    assert stand_in.threshold == 0.4
    assert dice(with_t2w, icv) > 0.99 and dice(parenchyma, icv) < 0.93
    t1w_only = np.asarray(extract_brain({"T1w": images["T1w"]}, "deepbet").dataobj) > 0
    np.testing.assert_array_equal(t1w_only, dilate_mm(parenchyma, 2.0, zooms))


def test_deepbet_engine_failures(phantom, monkeypatch: pytest.MonkeyPatch) -> None:
    images, _, _ = phantom
    monkeypatch.setattr(brain, "_deepbet_model", lambda: _StandIn(None, images["T1w"].affine))
    with pytest.raises(BrainExtractionError, match="deepbet found no brain"):
        extract_brain(images, "deepbet")
    blank = nib.Nifti1Image(np.zeros(SHAPE, np.float32), images["T1w"].affine)
    with pytest.raises(BrainExtractionError, match="no positive voxel"):
        extract_brain({"T1w": blank}, "deepbet")
