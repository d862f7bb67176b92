"""Tests of brainsr.metrics against hand-computed values (and scikit-image where it has the metric)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.metrics import structural_similarity

from brainsr.metrics import (
    bland_altman,
    cjv,
    efc,
    fwhm,
    image_metrics,
    mad,
    mae,
    nmse,
    nmse_paper,
    overlap_metrics,
    psnr,
    quality_metrics,
    ssim_slices,
    tissue_ratios,
    tissue_stats,
    volume_ml,
    wm2max,
)
from brainsr.train.losses import PSNR_IDENTICAL_DB

# ---------------------------------------------------------------------------------------- image metrics

P = np.array([0.0, 0.5, 1.0, 0.25])
G = np.array([0.0, 0.25, 0.5, 0.25])


def test_mae_mse_nmse_psnr_by_hand():
    # |p - g| = 0, .25, .5, 0 -> MAE 0.1875; (p - g)^2 = 0, .0625, .25, 0 -> sum .3125, MSE .078125
    assert mae(P, G) == pytest.approx(0.1875)
    # sum g^2 = 0 + .0625 + .25 + .0625 = .375 -> NMSE .3125 / .375
    assert nmse(P, G) == pytest.approx(0.3125 / 0.375)
    assert nmse_paper(P, G) == pytest.approx(0.3125 / 0.375 / 4)
    assert psnr(P, G) == pytest.approx(10 * math.log10(1 / 0.078125))
    assert psnr(G, G) == PSNR_IDENTICAL_DB


def test_masked_metrics_use_only_the_mask():
    mask = np.array([False, True, True, False])
    assert mae(P, G, mask) == pytest.approx(0.375)  # (.25 + .5) / 2
    assert nmse(P, G, mask) == pytest.approx(0.3125 / 0.3125)
    with pytest.raises(ValueError, match="empty"):
        mae(P, G, np.zeros(4, bool))
    with pytest.raises(ValueError, match="differ in shape"):
        mae(P, G[:3])
    assert math.isnan(nmse(P, np.zeros(4)))


def test_ssim_matches_skimage_per_slice():
    rng = np.random.default_rng(0)
    g = ndi.gaussian_filter(rng.random((30, 26, 4)), 1.5)
    g = (g - g.min()) / (g.max() - g.min())
    p = np.clip(g + 0.05 * rng.standard_normal(g.shape), 0, 1)
    expected = np.mean(
        [
            structural_similarity(
                p[..., k], g[..., k], data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
            )
            for k in range(4)
        ]
    )
    assert ssim_slices(p, g, axis=2) == pytest.approx(expected, abs=1e-5)
    # the same slices stacked along another axis
    pt, gt = np.moveaxis(p, 2, 0), np.moveaxis(g, 2, 0)
    assert ssim_slices(pt, gt, axis=0) == pytest.approx(expected, abs=1e-5)
    assert ssim_slices(g, g) == pytest.approx(1.0, abs=1e-6)


def test_ssim_with_mask_averages_the_masked_map():
    rng = np.random.default_rng(1)
    g = ndi.gaussian_filter(rng.random((24, 24, 2)), 1.0)
    p = np.clip(g + 0.1 * rng.standard_normal(g.shape), 0, 1)
    mask = np.zeros(g.shape, bool)
    mask[8:16, 8:16, 0] = True  # slice 1 has no mask: skipped
    _, full = structural_similarity(
        p[..., 0], g[..., 0], data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True
    )
    assert ssim_slices(p, g, mask) == pytest.approx(full[8:16, 8:16].mean(), abs=1e-5)
    with pytest.raises(ValueError, match="empty"):
        ssim_slices(p, g, np.zeros(g.shape, bool))


def test_image_metrics_names_every_region():
    rng = np.random.default_rng(2)
    g = rng.random((16, 16, 3))
    brain = np.zeros(g.shape, bool)
    brain[4:12, 4:12] = True
    out = image_metrics(g * 0.9, g, {"brain": brain, "fov": None})
    assert set(out) == {f"{m}_{r}" for m in ("mae", "nmse", "nmse_paper", "psnr", "ssim") for r in ("brain", "fov")}
    assert out["mae_brain"] == pytest.approx(0.1 * g[brain].mean())


# ---------------------------------------------------------------------------------------- quality metrics


def _tissue_image():
    img = np.zeros((2, 2, 2))
    wm = np.zeros(img.shape, bool)
    gm = np.zeros(img.shape, bool)
    img[0, 0] = [0.8, 1.0]  # WM: mean .9, sd .1
    img[0, 1] = [0.4, 0.6]  # GM: mean .5, sd .1
    wm[0, 0] = True
    gm[0, 1] = True
    return img, wm, gm


def test_cjv_by_hand():
    img, wm, gm = _tissue_image()
    assert cjv(img, wm, gm) == pytest.approx((0.1 + 0.1) / 0.4)
    # MRIQC form: MAD of {.8, 1} about median .9 is .1 -> scaled 1.4826 * .1
    assert cjv(img, wm, gm, "mriqc") == pytest.approx(2 * 1.4826 * 0.1 / 0.4)
    assert mad(np.array([1.0, 2.0, 4.0])) == pytest.approx(1.4826 * 1.0)
    with pytest.raises(ValueError, match="GM mask is empty"):
        cjv(img, wm, np.zeros(img.shape, bool))
    with pytest.raises(ValueError, match="form"):
        cjv(img, wm, gm, "fsl")


def test_efc_by_hand():
    x = np.array([0.0, 0.5, 1.0, 1.0])
    # paper: -sum r ln r with r = x / max: -(.5 ln .5) = .5 ln 2
    assert efc(x) == pytest.approx(0.5 * math.log(2))
    b = math.sqrt(0.25 + 1 + 1)
    r = np.array([0.5, 1.0, 1.0]) / b
    e = -np.sum(r * np.log(r))
    assert efc(x, "mriqc") == pytest.approx(e / (math.sqrt(4) / 2 * math.log(4)))
    # MRIQC form of a constant image is 1 (maximum entropy)
    assert efc(np.ones(27), "mriqc") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="positive"):
        efc(np.zeros(5))


def test_fwhm_by_hand_and_on_smoothed_noise():
    # values along x alternate 0, 1, 0, 1 (constant in y, z): var = .25, differences ±1 -> var(Δ) = 1,
    # r = 1 / (2 * .25) = 2 >= 1 -> NaN along x; along y and z Δ = 0 -> r = 0 -> NaN (log(1) = 0)
    img = np.tile(np.array([0.0, 1.0, 0.0, 1.0])[:, None, None], (1, 3, 3))
    out = fwhm(img, np.ones(img.shape, bool), (1.0, 1.0, 1.0))
    assert math.isnan(out["fwhm_x_vox"]) and math.isnan(out["fwhm_y_vox"])
    # x = 0, 0, 1, 1 along x: var .25, Δ = 0, 1, 0 -> var(Δ) = 2/9, r = (2/9) / .5 = 4/9
    img = np.tile(np.array([0.0, 0.0, 1.0, 1.0])[:, None, None], (1, 2, 2))
    img[:, 1] += 0.0
    out = fwhm(img, np.ones(img.shape, bool), (2.0, 1.0, 1.0))
    expected = 2.35482 * math.sqrt(-1 / (4 * math.log(1 - 4 / 9)))
    assert out["fwhm_x_vox"] == pytest.approx(expected, rel=1e-5)
    assert out["fwhm_x_mm"] == pytest.approx(2 * expected, rel=1e-5)
    # Gaussian-smoothed white noise of sigma s has FWHM about 2.355 s
    rng = np.random.default_rng(0)
    noise = ndi.gaussian_filter(rng.standard_normal((64, 64, 64)), 2.0)
    out = fwhm(noise, np.ones(noise.shape, bool), (1.0, 1.0, 1.5))
    for a in "xyz":
        assert out[f"fwhm_{a}_vox"] == pytest.approx(2.35482 * 2.0, rel=0.1)
    assert out["fwhm_z_mm"] == pytest.approx(1.5 * out["fwhm_z_vox"])


def test_wm2max_by_hand():
    img = np.arange(1.0, 101.0)  # 1 .. 100
    wm = np.zeros(100, bool)
    wm[[9, 19, 29]] = True  # values 10, 20, 30 -> median 20
    assert wm2max(img, wm) == pytest.approx(20 / np.percentile(img, 95))
    assert wm2max(img, wm, "mriqc") == pytest.approx(20 / np.percentile(img, 99.95))


def test_tissue_stats_and_ratios_by_hand():
    img = np.array([1.0, 2.0, 3.0, 10.0, 20.0, 4.0])
    masks = {"csf": np.array([1, 1, 1, 0, 0, 0], bool), "gm": np.array([0, 0, 0, 1, 1, 0], bool)}
    masks["wm"] = np.array([0, 0, 0, 0, 0, 1], bool)
    s = tissue_stats(img, masks)
    assert s["csf_mean"] == pytest.approx(2.0)
    assert s["csf_sd"] == pytest.approx(math.sqrt(2 / 3))
    assert s["csf_p05"] == pytest.approx(1.1)  # linear interpolation: 1 + .05 * 2 * (2 - 1)
    assert s["csf_p95"] == pytest.approx(2.9)
    assert s["gm_median"] == pytest.approx(15.0)
    assert s["wm_n"] == 1
    r = tissue_ratios(s)
    assert r["gmwm_mean"] == pytest.approx(15.0 / 4.0)
    assert r["gmcsf_mean"] == pytest.approx(15.0 / 2.0)
    assert r["wmcsf_p95"] == pytest.approx(4.0 / 2.9)
    assert math.isnan(r["gmwm_sd"])  # WM has one voxel: SD 0


def test_quality_metrics_collects_everything():
    rng = np.random.default_rng(3)
    img = rng.random((12, 12, 12))
    lab = rng.integers(0, 3, img.shape)
    tissues = {"csf": lab == 0, "gm": lab == 1, "wm": lab == 2}
    out = quality_metrics(img, tissues, np.ones(img.shape, bool), (1.0, 1.0, 1.0))
    for key in ("cjv", "cjv_mriqc", "efc", "efc_mriqc", "fwhm_avg_mm", "wm2max", "wm2max_mriqc", "gmwm_mean"):
        assert key in out
    with pytest.raises(ValueError, match="missing"):
        quality_metrics(img, {"gm": lab == 1}, np.ones(img.shape, bool), (1.0, 1.0, 1.0))


# ---------------------------------------------------------------------------------------- agreement


def test_overlap_metrics_by_hand():
    seg = np.array([1, 1, 1, 0, 0, 0, 0, 1], bool)
    ref = np.array([1, 1, 0, 1, 0, 0, 0, 0], bool)
    # TP 2, FP 2, FN 1, TN 3
    out = overlap_metrics(seg, ref)
    assert out["dice"] == pytest.approx(4 / 7)
    assert out["jaccard"] == pytest.approx(2 / 5)
    assert out["tpf"] == pytest.approx(2 / 3)
    assert out["tnf"] == pytest.approx(3 / 5)
    assert out["ppv"] == pytest.approx(2 / 4)
    region = np.array([1, 1, 1, 1, 1, 0, 0, 0], bool)  # TP 2, FP 1, FN 1, TN 1
    assert overlap_metrics(seg, ref, region)["tnf"] == pytest.approx(1 / 2)
    empty = overlap_metrics(np.zeros(4, bool), np.zeros(4, bool))
    assert math.isnan(empty["dice"]) and empty["tnf"] == 1.0


def test_volume_ml():
    assert volume_ml(np.ones((10, 10, 10), bool), (1.0, 1.0, 1.0)) == pytest.approx(1.0)
    assert volume_ml(np.full((2, 2, 2), 0.5), (2.0, 2.0, 2.0)) == pytest.approx(4 * 8 / 1000)


def test_bland_altman_by_hand():
    a = np.array([110.0, 95.0, 100.0])
    b = np.array([90.0, 105.0, 100.0])
    ba = bland_altman(a, b)
    pct = np.array([20.0, -10.0, 0.0])  # 100 (a - b) / ((a + b) / 2)
    np.testing.assert_allclose(ba.diff_pct, pct)
    assert ba.bias == pytest.approx(10 / 3)
    sd = math.sqrt(((20 - 10 / 3) ** 2 + (-10 - 10 / 3) ** 2 + (10 / 3) ** 2) / 2)
    assert ba.sd == pytest.approx(sd)
    assert ba.loa_high == pytest.approx(10 / 3 + 1.96 * sd)
    with pytest.raises(ValueError, match="at least 2"):
        bland_altman(a[:1], b[:1])
