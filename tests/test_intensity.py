"""Intensity scaling of a session on the analysis grid (brainsr.preprocess.intensity; paper 3.1)."""

from __future__ import annotations

import numpy as np
import pytest

from brainsr.preprocess.intensity import WM_DEPTH_MM, _kmeans_1d, scale_session, wm_rescale, wm_voxels
from brainsr.preprocess.layout import intensity_settings
from brainsr.preprocess.resample import brain_core, rescale

LEVELS = {"T1w": 0.75, "T2w": 0.3, "FLAIR": 0.4}
WM = {"rescale": "wm", "rescale_percentiles": [0.5, 99.5], "rescale_core_mm": 4.0, "rescale_wm_level": LEVELS}


def test_kmeans_finds_three_separated_classes() -> None:
    """Classes at 10, 50 and 90 (1000 voxels each): centres within half a histogram bin of them (512 bins over
    the 0.5-99.5 percentile range, 10-90: a bin is 80 / 512 wide)."""
    values = np.repeat([10.0, 50.0, 90.0], 1000)
    np.testing.assert_allclose(_kmeans_1d(values), [10.0, 50.0, 90.0], atol=80 / 512 / 2)


def _ball_head(fat: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """1 mm grid, mask = ball r <= 40: WM r <= 20 (T1w 100, T2w 50, FLAIR 80) holding a ventricle r <= 5 (CSF:
    T1w 20, T2w 200, FLAIR 10) and a lesion (FLAIR 150, T1w 75, T2w 90), GM 20 < r <= 40 (T1w 60, T2w 80, FLAIR
    90); ``fat``: the mask's outer 3 mm is scalp fat (T1w 180). Returns images, mask, WM and lesion voxels."""
    r = np.linalg.norm(np.indices((90, 90, 90)) - 44.5, axis=0)
    mask, wm = r <= 40, (r <= 20) & (r > 5)
    lesion = wm & (np.abs(np.indices(r.shape)[0] - 44.5 - 12) < 2.5)
    wm &= ~lesion
    values = {"T1w": (20, 60, 100, 75, 180), "T2w": (200, 80, 50, 90, 60), "FLAIR": (10, 90, 80, 150, 60)}
    images = {}
    for seq, (csf, gm, white, les, fat_value) in values.items():
        img = np.where(mask, float(gm), 0.0)
        img[wm], img[lesion], img[r <= 5] = white, les, csf
        if fat:
            img[mask & (r > 37)] = fat_value
        images[seq] = img
    return images, mask, wm, lesion


def test_wm_voxels_are_the_brightest_t1w_class() -> None:
    images, mask, wm, _ = _ball_head()
    np.testing.assert_array_equal(wm_voxels(images["T1w"], mask), wm)


def test_wm_rescale_keeps_ratios_to_white_matter() -> None:
    """WM (median 100) -> 0.4; lesion 150 -> 0.6 (1.5 x WM, not clipped); 300 -> clipped to 1; 0 outside."""
    images, mask, wm, lesion = _ball_head()
    data = images["FLAIR"].copy()
    data[44, 44, 44] = 300.0  # inside the ventricle: brighter than the clip value
    out, info = wm_rescale(data, mask, wm, 0.4)
    assert info["wm_reference"] == 80.0 and info["wm_voxels"] == int(wm.sum())
    np.testing.assert_allclose(out[wm], 0.4, rtol=1e-6)
    np.testing.assert_allclose(out[lesion], 150 / 80 * 0.4, rtol=1e-6)
    assert out[44, 44, 44] == 1.0 and out[~mask].max() == 0.0


def test_scale_session_wm_ignores_fat_at_the_mask_edge() -> None:
    """A 3 mm rim of scalp fat (T1w 180, brighter than WM) inside the mask: looked for deeper than WM_DEPTH_MM,
    the white matter is still the WM; within the 4 mm percentile core the brightest class would be the fat."""
    images, mask, wm, _ = _ball_head(fat=True)
    out = scale_session(images, mask, np.ones(3), WM)
    for seq, level in LEVELS.items():
        np.testing.assert_allclose(out[seq][0][wm], level, rtol=1e-6)
        assert out[seq][1]["depth_mm"] == WM_DEPTH_MM
    shallow = wm_voxels(images["T1w"], brain_core(mask, 1.0, np.ones(3)))
    assert (images["T1w"][shallow] == 180).any()  # the fat is in the 1 mm core's brightest class


def test_scale_session_percentile_is_the_papers_rescale() -> None:
    images, mask, _, _ = _ball_head()
    setting = {**WM, "rescale": "percentile", "rescale_core_mm": 0.0}
    out = scale_session(images, mask, np.ones(3), setting)
    for seq, data in images.items():
        expected, info = rescale(data, mask, (0.5, 99.5))
        np.testing.assert_array_equal(out[seq][0], expected)
        assert out[seq][1] == info


def test_scale_session_errors() -> None:
    images, mask, _, _ = _ball_head()
    with pytest.raises(ValueError, match="unknown rescale method 'zscore'"):
        scale_session(images, mask, np.ones(3), {**WM, "rescale": "zscore"})
    with pytest.raises(ValueError, match="no level for FLAIR"):
        scale_session(images, mask, np.ones(3), {**WM, "rescale_wm_level": {"T1w": 0.75, "T2w": 0.3}})
    with pytest.raises(ValueError, match="finds the white matter on T1w"):
        scale_session({"T2w": images["T2w"]}, mask, np.ones(3), WM)
    small = np.zeros_like(mask)
    small[40:44, 40:44, 40:44] = True  # 64 voxels: no white matter to measure
    with pytest.raises(ValueError, match="64 voxels in the brain core"):
        scale_session(images, small, np.ones(3), WM)


def test_intensity_settings_prefer_the_model_files_record() -> None:
    pre = {**WM, "grid_mm": 1.0}
    assert intensity_settings(pre) == WM
    recorded = {"rescale": "wm", "rescale_wm_level": {"T1w": 0.8, "T2w": 0.3, "FLAIR": 0.4}, "range": [0, 1]}
    assert intensity_settings(pre, recorded) == {**WM, "rescale_wm_level": recorded["rescale_wm_level"]}
    # a model file from before the wm scaling records percentiles only: it was trained on percentile-scaled data
    old = {"rescale_percentiles": [1.0, 99.0], "rescale_core_mm": 4, "range": [0, 1]}
    assert intensity_settings(pre, old) == {**WM, "rescale": "percentile", "rescale_percentiles": [1.0, 99.0]}
