"""The display helpers of the base layer (brainsr.base.display), against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from brainsr.base.display import display_window, mask_centre, orthogonal_slices, show_slice, slice_aspect


def test_display_window_is_the_1st_to_99_5th_percentile_inside_the_mask() -> None:
    data = np.arange(201, dtype=float)  # 0..200
    mask = data >= 1  # 1..200: percentiles by linear interpolation over 200 values
    lo, hi = display_window(data, mask)
    assert lo == pytest.approx(1 + 0.01 * 199)
    assert hi == pytest.approx(1 + 0.995 * 199)


def test_display_window_of_a_flat_image_is_one_wide_and_an_empty_mask_uses_every_voxel() -> None:
    assert display_window(np.full(10, 3.0), np.ones(10, bool)) == (3.0, 4.0)
    data = np.array([0.0, 100.0])
    assert display_window(data, np.zeros(2, bool)) == pytest.approx((1.0, 99.5))


def test_orthogonal_slices_are_axial_coronal_sagittal_through_the_centre() -> None:
    data = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    axial, coronal, sagittal = orthogonal_slices(data, (1, 2, 3))
    np.testing.assert_array_equal(axial, data[:, :, 3].T)  # rows: y (anterior up with origin='lower')
    np.testing.assert_array_equal(coronal, data[:, 2, :].T)
    np.testing.assert_array_equal(sagittal, data[1, :, :].T)
    assert axial.shape == (3, 2) and coronal.shape == (4, 2) and sagittal.shape == (4, 3)


def test_mask_centre_rounds_the_centre_of_mass_and_falls_back_to_the_grid_middle() -> None:
    mask = np.zeros((5, 6, 7), bool)
    mask[1:3, 2, 4] = True  # centre of mass (1.5, 2, 4): rounds half to even
    assert mask_centre(mask) == (2, 2, 4)
    assert mask_centre(np.zeros((5, 6, 7), bool)) == (2, 3, 4)  # (2.5, 3, 3.5) rounded half to even


def test_slice_aspect_is_height_over_width_in_mm() -> None:
    zooms = (1.0, 2.0, 5.0)
    assert slice_aspect(zooms, "axial") == 2.0  # rows y (2 mm), columns x (1 mm)
    assert slice_aspect(zooms, "coronal") == 5.0
    assert slice_aspect(zooms, "sagittal") == 2.5


def test_show_slice_draws_the_slice_at_its_aspect_without_ticks() -> None:
    ax = Figure().subplots()
    data = np.random.default_rng(0).random((4, 5, 6))
    im = show_slice(ax, data, (1, 2, 3), "coronal", (1.0, 1.0, 3.0), cmap="gray")
    np.testing.assert_array_equal(im.get_array(), data[:, 2, :].T)
    assert ax.get_aspect() == 3.0 and not ax.get_xticks().size and not ax.get_yticks().size
