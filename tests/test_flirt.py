"""FLIRT-convention copies of the ITK linear transforms (brainsr.preprocess.flirt), read back with fslpy."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from brainsr.preprocess.flirt import itk_world_affine, read_flirt_world, write_flirt
from brainsr.preprocess.register import map_points, ras_to_lps


def _itk(path: Path, matrix: np.ndarray, translation_lps: list[float]) -> str:
    import ants

    tx = ants.create_ants_transform(
        transform_type="AffineTransform", dimension=3, matrix=matrix, translation=translation_lps
    )
    ants.write_transform(tx, str(path))
    return str(path)


def _save(path: Path, affine: np.ndarray, shape: tuple[int, int, int]) -> str:
    nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), affine), str(path))
    return str(path)


def test_translation_by_hand(tmp_path: Path) -> None:
    # ITK: fixed LPS point p -> moving p + (2, -3, 4) LPS, i.e. RAS +(-2, 3, 4); so the source (moving) -> reference
    # (fixed) world map is X -> X + (2, -3, -4). Both images 10^3 at 1 mm with the identity (RAS, positive
    # determinant) affine, where FSL's scaled-voxel x is 9 - X: the FLIRT matrix is a shift of (-2, -3, -4).
    itk = _itk(tmp_path / "t.mat", np.eye(3), [2.0, -3.0, 4.0])
    img = _save(tmp_path / "img.nii.gz", np.eye(4), (10, 10, 10))
    assert np.allclose(itk_world_affine(itk), nib.affines.from_matvec(np.eye(3), [2, -3, -4]))
    write_flirt(itk, img, img, tmp_path / "t.flirt.mat")
    flirt = np.loadtxt(tmp_path / "t.flirt.mat")
    assert np.allclose(flirt, nib.affines.from_matvec(np.eye(3), [-2, -3, -4]), atol=1e-6)


def test_round_trip_through_fslpy_matches_ants_point_mapping(tmp_path: Path) -> None:
    """Oblique anisotropic source, LAS reference: the FLIRT file read back (fslpy) maps each moving point that
    ANTs gives for a reference point back onto that point."""
    rot = np.array([[0.97, -0.2, 0.05], [0.21, 0.96, -0.1], [-0.03, 0.11, 1.04]])
    itk = _itk(tmp_path / "a.mat", rot, [4.5, -2.0, 7.25])
    src_aff = nib.affines.from_matvec(
        np.diag([0.9, 0.9, 5.0]) @ np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]]), [-90, -100, -60]
    )
    src = _save(tmp_path / "src.nii.gz", src_aff, (200, 30, 220))
    ref = _save(
        tmp_path / "ref.nii.gz", nib.affines.from_matvec(np.diag([-2.0, 2.0, 2.0]), [90, -126, -72]), (91, 109, 91)
    )
    write_flirt(itk, src, ref, tmp_path / "a.flirt.mat")
    world = read_flirt_world(tmp_path / "a.flirt.mat", src, ref)
    assert np.allclose(world, itk_world_affine(itk), atol=1e-5)
    ref_points = np.array([[0.0, 0.0, 0.0], [30.0, -20.0, 10.0], [-45.0, 12.0, 33.0]])
    moved = ras_to_lps(map_points(ras_to_lps(ref_points), [itk]))
    assert np.allclose(nib.affines.apply_affine(world, moved), ref_points, atol=1e-4)
