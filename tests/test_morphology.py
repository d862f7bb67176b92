"""Euclidean morphology in mm computed in the mask's bounding box equals the whole-grid distance transform."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from brainsr.base.morphology import box_mm, dilate_mm


def _whole_grid(mask: np.ndarray, radius_mm: float, zooms: np.ndarray) -> np.ndarray:
    if radius_mm > 0:
        return ndi.distance_transform_edt(~mask, sampling=zooms) <= radius_mm
    return ndi.distance_transform_edt(mask, sampling=zooms) > -radius_mm


def _blob(shape: tuple[int, int, int], centre: tuple[int, int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = ndi.gaussian_filter(rng.standard_normal(shape), 1.5) > -0.4
    ball = np.linalg.norm(np.indices(shape) - np.array(centre)[:, None, None, None], axis=0) < 7
    return noisy & ball


@pytest.mark.parametrize("centre", [(12, 14, 10), (2, 14, 10)])  # inside, and cut by the grid's border
@pytest.mark.parametrize("radius", [2.5, 4.0, -1.5, -3.0])
def test_dilate_mm_equals_the_whole_grid_transform(centre: tuple[int, int, int], radius: float) -> None:
    zooms = np.array([1.0, 1.2, 2.0])
    mask = _blob((26, 28, 20), centre, seed=int(10 * abs(radius)) + centre[0])
    assert mask.any() and not mask.all()
    ours = dilate_mm(mask, radius, zooms)
    assert np.array_equal(ours, _whole_grid(mask, radius, zooms))
    if radius > 0:
        assert ours.sum() > mask.sum()
    else:
        assert 0 < ours.sum() < mask.sum()


def test_dilate_mm_edge_cases() -> None:
    zooms = np.ones(3)
    empty = np.zeros((5, 5, 5), bool)
    assert not dilate_mm(empty, 2.0, zooms).any()
    full = ~empty
    assert dilate_mm(full, -2.0, zooms).all()
    one = empty.copy()
    one[2, 2, 2] = True
    assert dilate_mm(one, 1.0, zooms).sum() == 7  # the voxel and its 6 face neighbours (diagonals at 1.41 mm)
    assert dilate_mm(one, -0.5, zooms).sum() == 1  # 1 mm from the outside
    assert not dilate_mm(one, -1.0, zooms).any()


def test_box_mm_pads_in_whole_voxels_and_clips() -> None:
    mask = np.zeros((10, 10, 10), bool)
    mask[1, 4:6, 8] = True
    box = box_mm(mask, 2.5, np.array([1.0, 2.0, 1.0]))
    assert box == (slice(0, 5), slice(2, 8), slice(5, 10))
