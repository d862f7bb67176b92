"""DICOM input (issue 7): a series folder converted with dcm2niix keeps geometry and intensities, loses identity."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import small_model_file
from dicom_series import IDENTITY, write_series

from brainsr.dicom import ACQUISITION_FIELDS, DicomInputError, convert_series
from brainsr.infer.upsample import upsample_scans


def _oblique_image() -> nib.Nifti1Image:
    """20 x 24 x 10 voxels of 0.9 x 0.9 x 5 mm, rotated 0.3 rad about z (a thick-sliced clinical acquisition)."""
    data = np.random.default_rng(0).random((20, 24, 10)).astype(np.float32) * 800
    c, s = np.cos(0.3), np.sin(0.3)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag([0.9, 0.9, 5.0])
    affine[:3, 3] = [-10, -12, -20]
    return nib.Nifti1Image(data, affine)


def test_series_converts_with_same_world_geometry_and_intensities(tmp_path: Path) -> None:
    img = _oblique_image()
    path, acquisition = convert_series(write_series(img, tmp_path / "dicom"), tmp_path, "T1w")
    assert path == tmp_path / "T1w.nii.gz" and sorted(p.name for p in tmp_path.iterdir()) == ["T1w.nii.gz", "dicom"]
    out = nib.load(path)
    # voxel (i, j, k) of the conversion sits where voxel M @ (i, j, k) of the original does; M is a flip/permutation
    m = np.linalg.inv(img.affine) @ out.affine
    assert np.allclose(m, np.rint(m), atol=1e-4) and sorted(np.abs(np.rint(m[:3, :3])).sum(axis=0)) == [1, 1, 1]
    idx = np.indices(out.shape).reshape(3, -1)
    src = np.rint(m[:3, :3] @ idx + m[:3, 3:]).astype(int)
    original = np.asarray(img.dataobj)[src[0], src[1], src[2]]
    # int16 pixels with slope 800/30000: at most half a quantum from the original
    assert np.abs(out.get_fdata().reshape(-1) - original).max() <= 0.5 * 800 / 30000 + 1e-6
    assert acquisition == {
        "Modality": "MR",
        "MagneticFieldStrength": 1.5,
        "RepetitionTime": 0.5,
        "EchoTime": 0.015,
        "SliceThickness": 5,
        "SpacingBetweenSlices": 5,
    }
    assert set(acquisition) <= set(ACQUISITION_FIELDS)
    raw = gzip.decompress(path.read_bytes())
    for value in IDENTITY.values():
        assert value.encode() not in raw, value


def test_two_series_in_one_folder_are_refused_naming_them(tmp_path: Path) -> None:
    folder = tmp_path / "study"
    write_series(_oblique_image(), folder / "a", series_number=3)
    write_series(_oblique_image(), folder / "b", series_number=7)
    with pytest.raises(DicomInputError, match=r"study: holds 2 image series \(series3, series7\); point") as info:
        convert_series(folder, tmp_path / "out", "T1w")
    assert info.value.path == str(folder)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "the DICOM folder is empty"),
        (lambda p: (p.mkdir(), (p / "notes.txt").write_text("no images here")), "no DICOM image series could be"),
        (lambda p: p.write_text("a file"), "not a folder of DICOM files"),
    ],
)
def test_unusable_dicom_folders_are_named(tmp_path: Path, make, message: str) -> None:
    folder = tmp_path / "T2w_dicom"
    make(folder)
    (tmp_path / "out").mkdir()
    with pytest.raises(DicomInputError, match=message) as info:
        convert_series(folder, tmp_path / "out", "T2w")
    assert str(folder) in str(info.value)


def test_upsample_refuses_a_broken_dicom_folder_before_writing(tmp_path: Path) -> None:
    from brainsr.config import validate_config

    model = small_model_file(tmp_path / "m.pt", ["FLAIR"])
    folder = tmp_path / "FLAIR_dicom"
    folder.mkdir()
    (folder / "IM0001.dcm").write_bytes(b"DICM but not really")
    out = tmp_path / "out"
    with pytest.raises(DicomInputError, match=r"FLAIR_dicom: no DICOM image series could be converted"):
        upsample_scans({"FLAIR": folder}, model, out, preprocess=validate_config({})["preprocess"])
    assert not out.exists()
