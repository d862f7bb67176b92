"""Correlation-ratio registration (paper section 3.1, FLIRT's default cost): the CR itself, recovery of known
rigid and affine transforms of a synthetic phantom, and the ANTs transform convention of the result."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

ants = pytest.importorskip("ants")

from brainsr.base.images import scoped_tmpdir  # noqa: E402
from brainsr.preprocess import cr  # noqa: E402

# ------------------------------------------------------------------------------------------ correlation ratio


def test_correlation_ratio_by_hand() -> None:
    # reference [0, 0, 1, 1] -> two bins (first and last of 64); floating groups {1, 3} and {5, 5}.
    # N var(floating): mean 3.5, squared deviations 6.25 + 0.25 + 2.25 + 2.25 = 11.
    # sum_k n_k var_k: group {1, 3} has mean 2, squared deviations 1 + 1 = 2; group {5, 5} has 0.
    # eta^2 = 1 - 2 / 11 = 9 / 11.
    eta2 = cr.correlation_ratio(np.array([0.0, 0.0, 1.0, 1.0]), np.array([1.0, 3.0, 5.0, 5.0]))
    assert eta2 == pytest.approx(9.0 / 11.0, abs=1e-12)
    # the mask drops the last point: floating {1, 3, 5}, mean 3, N var = 4 + 0 + 4 = 8;
    # groups {1, 3} (within 2) and {5} (within 0) -> eta^2 = 1 - 2 / 8 = 0.75.
    masked = cr.correlation_ratio(
        np.array([0.0, 0.0, 1.0, 1.0]), np.array([1.0, 3.0, 5.0, 5.0]), mask=np.array([1, 1, 1, 0], bool)
    )
    assert masked == pytest.approx(0.75, abs=1e-12)


def test_correlation_ratio_function_and_noise() -> None:
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 10, size=(20, 20, 20)).astype(float)  # 10 levels over [0, 9]: one 64-bin each
    assert cr.correlation_ratio(ref, np.sin(3.0 * ref)) == pytest.approx(1.0, abs=1e-9)  # non-monotonic function
    noise = rng.normal(size=ref.shape)
    assert cr.correlation_ratio(ref, noise) < 0.01  # expectation (levels - 1) / N ~ 0.001
    assert cr.correlation_ratio(ref, np.full(ref.shape, 2.0)) == 0.0
    assert cr.correlation_ratio(np.ones(ref.shape), noise) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="shape"):
        cr.correlation_ratio(ref, noise[:-1])


# ----------------------------------------------------------------------------------------------- the phantom

#: (centre mm, radii mm, fixed intensity, moving intensity); the first is the "head", the others lie inside it.
#: The moving intensities are a non-monotonic remapping of the fixed ones (a different "contrast").
ELLIPSOIDS = (
    ((0.0, 0.0, 0.0), (48.0, 40.0, 38.0), 0.5, 0.8),
    ((9.0, 6.0, 5.0), (13.0, 7.0, 9.0), 1.0, 0.1),
    ((-18.0, -12.0, -6.0), (9.0, 14.0, 8.0), 0.2, 0.45),
    ((16.0, -18.0, -12.0), (8.0, 7.0, 11.0), 0.8, 1.0),
    ((-12.0, 20.0, 14.0), (6.0, 10.0, 5.0), 0.05, 0.3),
)
#: Physical position of the phantom's centre (away from the origin, so that transform centres matter).
OFFSET = np.array([20.0, -30.0, 15.0])


def phantom(points: np.ndarray, moving: bool) -> np.ndarray:
    """Soft-edged ellipsoids (edge width ~1.5 mm) evaluated at physical points (3, N)."""
    out = np.zeros(points.shape[1])
    points = points - OFFSET[:, None]
    base = 0.0
    for n, (centre, radii, a, b) in enumerate(ELLIPSOIDS):
        value = b if moving else a
        r = np.linalg.norm((points - np.array(centre)[:, None]) / np.array(radii)[:, None], axis=0)
        inside = 1.0 / (1.0 + np.exp(-(1.0 - r) * min(radii) / 1.5))
        out += (value - base) * inside
        if n == 0:
            base = value
    return out


def grid_points(img: ants.ANTsImage) -> np.ndarray:
    """Physical points (3, N) of all voxels, C order."""
    ijk = np.indices(img.shape).reshape(3, -1).astype(float)
    return np.asarray(img.origin)[:, None] + np.asarray(img.direction) @ (np.asarray(img.spacing)[:, None] * ijk)


def make_pair(true: np.ndarray) -> tuple[ants.ANTsImage, ants.ANTsImage, ants.ANTsImage]:
    """Fixed phantom (3 mm, axis-aligned), its mask, and the moving phantom with ``moving(true(x)) = g(fixed(x))``.

    The moving grid has anisotropic voxels and an oblique, axis-permuting, reflecting direction matrix.
    """
    shape_f, sp_f = (40, 38, 36), 3.0
    origin_f = OFFSET - sp_f * (np.array(shape_f) - 1) / 2
    fdata = np.zeros(shape_f)
    fixed = ants.from_numpy(fdata, origin=tuple(origin_f), spacing=(sp_f,) * 3)
    pts_f = grid_points(fixed)
    fixed = ants.from_numpy(
        phantom(pts_f, False).reshape(shape_f).astype(np.float32), origin=tuple(origin_f), spacing=(sp_f,) * 3
    )
    radii = np.array(ELLIPSOIDS[0][1])[:, None]
    mask = (np.linalg.norm((pts_f - OFFSET[:, None]) / radii, axis=0) <= 1.0).reshape(shape_f).astype(np.float32)
    mask = ants.from_numpy(mask, origin=tuple(origin_f), spacing=(sp_f,) * 3)

    c, s = np.cos(np.deg2rad(10.0)), np.sin(np.deg2rad(10.0))
    oblique = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    direction = oblique @ np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]]) @ np.diag([1.0, 1.0, -1.0])
    shape_m, sp_m = (52, 46, 40), np.array([2.5, 3.0, 3.5])
    origin_m = OFFSET - direction @ (sp_m * (np.array(shape_m) - 1) / 2) + np.array([3.0, -2.0, 4.0])
    template = ants.from_numpy(
        np.zeros(shape_m, np.float32), origin=tuple(origin_m), spacing=tuple(sp_m), direction=direction
    )
    pts_m = grid_points(template)
    inv = np.linalg.inv(true)
    pre = inv[:3, :3] @ pts_m + inv[:3, 3:]  # the fixed-space points that ``true`` maps onto the moving voxels
    mdata = phantom(pre, True).reshape(shape_m).astype(np.float32)
    moving = ants.from_numpy(mdata, origin=tuple(origin_m), spacing=tuple(sp_m), direction=direction)
    return fixed, mask, moving


def affine(rot_deg: tuple[float, float, float], shift: tuple[float, float, float], linear: np.ndarray | None = None):
    """4x4 fixed -> moving map ``x -> R L (x - OFFSET) + OFFSET + shift`` (about the phantom centre)."""
    out = np.eye(4)
    rot = cr._rotation(np.deg2rad(np.array(rot_deg)))
    out[:3, :3] = rot @ (np.eye(3) if linear is None else linear)
    out[:3, 3] = OFFSET + np.asarray(shift) - out[:3, :3] @ OFFSET
    return out


RIGID = affine((6.0, -4.0, 8.0), (4.0, -3.0, 5.0))
AFFINE = affine(
    (-5.0, 3.0, -7.0), (-3.0, 5.0, 2.0), np.array([[1.1, 0.05, -0.03], [0.0, 0.92, 0.04], [0.0, 0.0, 1.05]])
)


@pytest.fixture(scope="module")
def rigid_case():
    fixed, mask, moving = make_pair(RIGID)
    tx, info = cr.register_cr(fixed, moving, 6, fixed_mask=mask, levels_mm=(8.0, 4.0))
    return fixed, mask, moving, tx, info


def brain_points(fixed: ants.ANTsImage, mask: ants.ANTsImage) -> np.ndarray:
    return grid_points(fixed)[:, mask.numpy().ravel() > 0].T


def test_register_cr_recovers_rigid(rigid_case) -> None:
    fixed, mask, _, _, info = rigid_case
    found = np.asarray(info["affine"])
    pts = brain_points(fixed, mask)
    start = cr.mean_displacement(np.eye(4), RIGID, pts)
    error = cr.mean_displacement(found, RIGID, pts)
    assert start > 5.0  # the test is not trivial
    assert error < 0.3, f"rigid: mean displacement error {error:.3f} mm (voxels 3 mm)"
    assert np.allclose(found[:3, :3].T @ found[:3, :3], np.eye(3), atol=1e-9)  # dof 6 stays rigid
    assert info["evaluations"] > 0 and len(info["cost"]) == 2 and info["seconds"] > 0


def test_register_cr_recovers_affine() -> None:
    fixed, mask, moving = make_pair(AFFINE)
    pts = brain_points(fixed, mask)
    _, rigid = cr.register_cr(fixed, moving, 6, fixed_mask=mask, levels_mm=(8.0, 4.0))
    _, info = cr.register_cr(fixed, moving, 12, fixed_mask=mask, levels_mm=(8.0, 4.0))
    error = cr.mean_displacement(np.asarray(info["affine"]), AFFINE, pts)
    assert cr.mean_displacement(np.asarray(rigid["affine"]), AFFINE, pts) > 1.5  # a rigid fit cannot do this
    assert error < 0.3, f"affine: mean displacement error {error:.3f} mm (voxels 3 mm)"
    assert info["cost"][-1] < rigid["cost"][-1]


def test_written_transform_matches_ants(rigid_case, tmp_path) -> None:
    fixed, _, moving, tx, info = rigid_case
    path = cr.write_affine(tx, tmp_path / "fixed_to_moving.mat")
    mat = cr.read_affine(path)
    assert np.allclose(mat, np.asarray(info["affine"]), atol=1e-4)

    # images: ants.apply_transforms(fixed, moving, [path]) samples the moving image at T(x_fixed)
    with scoped_tmpdir():
        warped = ants.apply_transforms(fixed=fixed, moving=moving, transformlist=[str(path)], interpolator="linear")
    pts = grid_points(fixed)
    mapped = cr.transform_points(mat, pts.T).T
    vox = np.linalg.inv(np.asarray(moving.direction)) @ (mapped - np.asarray(moving.origin)[:, None])
    vox /= np.asarray(moving.spacing)[:, None]
    own = ndimage.map_coordinates(moving.numpy(), vox, order=1, mode="constant", prefilter=False)
    interior = np.all((vox >= 0) & (vox <= np.array(moving.shape)[:, None] - 1), axis=0)
    assert interior.mean() > 0.5
    diff = np.abs(warped.numpy().ravel() - own)[interior]
    assert diff.max() < 1e-4 * float(np.abs(moving.numpy()).max())

    # points: apply_transforms_to_points with the same list maps fixed points to moving points;
    # whichtoinvert=[True] maps moving points back to fixed ones.
    sample = pts[:, ::997].T
    frame = pd.DataFrame(sample, columns=["x", "y", "z"])
    to_moving = ants.apply_transforms_to_points(3, frame, [str(path)]).to_numpy()
    assert np.allclose(to_moving, cr.transform_points(mat, sample), atol=1e-3)
    back = ants.apply_transforms_to_points(3, pd.DataFrame(to_moving, columns=["x", "y", "z"]), [str(path)], [True])
    assert np.allclose(back.to_numpy(), sample, atol=1e-3)


def test_transform_helpers_round_trip() -> None:
    rng = np.random.default_rng(3)
    p = np.r_[rng.normal(0, 5, 3), rng.normal(0, 0.2, 3), rng.normal(0, 0.1, 3), rng.normal(0, 0.1, 3)]
    a = cr._matrix(p)
    assert np.allclose(cr._matrix(cr._params(a, p[:3])), a, atol=1e-10)
    centre = np.array([1.0, -20.0, 15.0])
    mat = cr.affine_from_transform(cr.transform_from_affine(a, p[:3], centre))
    x = np.array([[10.0, 20.0, -30.0]])
    assert np.allclose(cr.transform_points(mat, x)[0], a @ (x[0] - centre) + centre + p[:3], atol=1e-4)
    with pytest.raises(ValueError, match="reflection"):
        cr._params(np.diag([1.0, 1.0, -1.0]), np.zeros(3))


def test_register_cr_rejects_bad_arguments(rigid_case) -> None:
    fixed, _, moving, _, _ = rigid_case
    for dof in (3, 7, 9, 0):
        with pytest.raises(ValueError, match="dof"):
            cr.register_cr(fixed, moving, dof)
    small = ants.from_numpy(np.ones((4, 4, 4), np.float32))
    with pytest.raises(ValueError, match="fixed_mask"):
        cr.register_cr(fixed, moving, 6, fixed_mask=small)
    with pytest.raises(ValueError, match="initial"):
        cr.register_cr(fixed, moving, 6, initial=np.eye(3))
