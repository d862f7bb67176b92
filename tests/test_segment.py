"""Tests of brainsr.segment: T1w tissue masks, multispectral classes, WMH and the lesion template."""

from __future__ import annotations

import numpy as np
import pytest

from brainsr.segment import CLASSES, lesion_prior, multispectral_classes, t1_tissues, wmh_mask, zscore_in
from brainsr.segment.tissue import flow_voids, pial_shell


def test_zscore_in_by_hand():
    img = np.array([1.0, 3.0, 100.0])
    mask = np.array([True, True, False])
    np.testing.assert_allclose(zscore_in(img, mask), [-1.0, 1.0, 98.0])  # mean 2, SD 1
    with pytest.raises(ValueError, match="constant"):
        zscore_in(np.ones(3), mask)


def test_t1_tissues_orders_classes_by_intensity():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, (20, 20, 20)).astype(np.uint8)  # 0 outside, 1 CSF, 2 GM, 3 WM
    t1 = np.choose(truth, [0.0, 0.2, 0.5, 0.8]) + 0.02 * rng.standard_normal(truth.shape)
    labels = t1_tissues(t1, truth > 0, seed=0)
    np.testing.assert_array_equal(labels, truth)
    with pytest.raises(ValueError, match="empty"):
        t1_tissues(t1, np.zeros(t1.shape, bool))
    with pytest.raises(ValueError, match="at least 3"):
        t1_tissues(t1, truth > 0, n_components=2)


def test_t1_tissues_bright_non_brain_voxels_do_not_take_the_wm_class():
    """Scalp fat left in a coarse mask (5 % of voxels, brighter than WM) joins WM; it does not push WM into GM."""
    rng = np.random.default_rng(3)
    truth = rng.choice(4, size=(24, 24, 24), p=[0.05, 0.25, 0.35, 0.35]).astype(np.uint8)  # 0 = fat here
    t1 = np.choose(truth, [0.97, 0.2, 0.5, 0.7]) + 0.03 * rng.standard_normal(truth.shape)
    labels = t1_tissues(t1, np.ones(truth.shape, bool), seed=0)
    brain = truth > 0
    assert (labels[brain] == truth[brain]).mean() > 0.995  # classes 6.7 noise SDs apart
    assert (labels[~brain] == 3).mean() > 0.995


def test_multispectral_classes_follow_the_paper_contrasts():
    """Voxels with the contrasts of paper 3.8.3 get their class (FLAIR, T2w, T1w intensities in [0, 1])."""
    rng = np.random.default_rng(1)
    groups = {  # name: (FLAIR, T2w, T1w), count
        "csf": ((0.1, 0.9, 0.1), 3000),  # hypo T1w and FLAIR, hyper T2w
        "pial": ((0.75, 0.75, 0.3), 1500),  # hypo T1w, hyper FLAIR and T2w
        "gm": ((0.6, 0.5, 0.5), 6000),
        "wm": ((0.6, 0.3, 0.75), 6000),
    }
    truth, seqs = [], []
    for name, (means, n) in groups.items():
        truth += [name] * n
        seqs.append(np.asarray(means) + 0.02 * rng.standard_normal((n, 3)))
    x = np.concatenate(seqs)
    shape = (x.shape[0], 1, 1)
    brain = np.ones(shape, bool)
    labels, components = multispectral_classes(
        x[:, 0].reshape(shape), x[:, 1].reshape(shape), x[:, 2].reshape(shape), brain, n_components=4, seed=0
    )
    expected = np.array([{"gm": "tissue", "wm": "tissue"}.get(t, t) for t in truth])
    got = np.array([CLASSES[v] for v in labels.ravel()])
    assert np.mean(got == expected) > 0.99  # a one-voxel-thin row: no flow void, and CSF touches no tissue
    assert sorted(set(components.values())) == ["csf", "pial", "tissue"]  # no component is named sinus
    # deterministic for a seed
    again, _ = multispectral_classes(
        x[:, 0].reshape(shape), x[:, 1].reshape(shape), x[:, 2].reshape(shape), brain, n_components=4, seed=0
    )
    np.testing.assert_array_equal(labels, again)


def test_multispectral_classes_add_the_pial_shell_and_the_flow_voids():
    """A CSF slab beside tissue, a dark tube inside the CSF: the slab's face on the tissue is pial, the tube sinus."""
    rng = np.random.default_rng(2)
    shape = (24, 24, 12)
    truth = np.full(shape, "tissue", object)
    truth[:, :7] = "csf"
    truth[:, 7] = "pial"  # the CSF row touching the tissue
    truth[10:14, 2:6, :] = "sinus"
    means = {"csf": (0.1, 0.9, 0.1), "pial": (0.1, 0.9, 0.1), "sinus": (0.1, 0.3, 0.1)}  # sinus: T2w below tissue
    x = np.stack([np.vectorize(lambda n, c=c: means.get(n, (0.6, 0.4, 0.6))[c])(truth) for c in range(3)], -1)
    x = x + 0.02 * rng.standard_normal(x.shape)
    labels, _ = multispectral_classes(x[..., 0], x[..., 1], x[..., 2], np.ones(shape, bool), n_components=3, seed=0)
    got = np.vectorize(CLASSES.get)(labels)
    assert np.array_equal(got[truth != "sinus"], truth[truth != "sinus"])
    # the opening rounds the tube's ends: all but the 4 corners of each end slice are found
    assert np.sum((got == "sinus") & (truth == "sinus")) == 4 * 4 * 12 - 8 and np.sum(got == "sinus") == 4 * 4 * 12 - 8


def test_pial_shell_is_the_csf_touching_tissue_in_26_neighbours():
    labels = np.full((7, 7, 7), 1, np.uint8)  # CSF
    labels[3, 3, 3] = 4  # one tissue voxel
    labels[0, 0, 0] = 2  # a sinus voxel is never pial
    shell = pial_shell(labels)
    expected = np.zeros(labels.shape, bool)
    expected[2:5, 2:5, 2:5] = True
    expected[3, 3, 3] = False
    np.testing.assert_array_equal(shell, expected)  # the 26 neighbours


def test_flow_voids_keep_a_dark_tube_and_drop_the_dark_rim():
    """A 4x4-voxel tube dark in T1w and T2w is a sinus; the one-voxel dark rim at the brain's edge is not."""
    shape = (20, 20, 12)
    brain = np.zeros(shape, bool)
    brain[2:18, 2:18, 1:11] = True
    labels = np.where(brain, 4, 0).astype(np.uint8)  # tissue ...
    labels[2:18, 2:6, 1:11] = 1  # ... and a CSF slab
    t1 = np.where(labels == 1, -1.5, 0.5)  # z-scores: CSF dark in T1w
    t2 = np.where(labels == 1, 1.5, -0.5)  # CSF bright in T2w
    tube = np.zeros(shape, bool)
    tube[8:12, 8:12, 1:11] = True
    rim = brain & ~np.pad(np.ones((14, 14, 8), bool), ((3, 3), (3, 3), (2, 2)))
    for dark in (tube, rim & (labels == 1)):
        t1[dark], t2[dark] = -1.6, -1.5
    voids = flow_voids(t2, t1, labels, brain)
    # the opening rounds the tube's corners; the one-voxel regrowth restores all but the 4 corners of each end
    expected = tube.copy()
    for x in (8, 11):
        for y in (8, 11):
            expected[x, y, [1, 10]] = False
    np.testing.assert_array_equal(voids, expected)
    assert not flow_voids(t2, t1, np.where(brain, 4, 0), brain).any()  # no CSF class: no reference, no voids


def _flair_with_lesions():
    flair = 0.47 + 0.06 * (np.indices((24, 24, 24)).sum(0) % 2)  # checkerboard 0.47 / 0.53: z about ±0.7
    brain = np.zeros(flair.shape, bool)
    brain[2:22, 2:22, 2:22] = True
    flair[~brain] = 0.0
    flair[10:13, 10:13, 10:13] = 1.0  # a lesion: 27 voxels
    flair[13, 10:13, 10:13] = 0.555  # its rim: z between 0.95 and 1.3
    flair[4:6, 4:6, 4:6] = 1.0  # a hyperintense spot outside the lesion template
    flair[18, 18, 4] = 0.555  # an isolated mildly bright voxel
    return flair, brain


def test_wmh_mask_by_hand():
    flair, brain = _flair_with_lesions()
    z = zscore_in(flair, brain)
    assert z[11, 11, 11] > 1.3 and 0.95 < z[13, 11, 11] < 1.3 and z[3, 3, 3] < 0.95
    prior = np.zeros(flair.shape)
    prior[7:17, 7:17, 7:17] = 1.0  # lesions are plausible only in the central block
    wmh = wmh_mask(flair, brain, prior, (1.0, 1.0, 1.0))
    expected = np.zeros(flair.shape, bool)
    expected[10:13, 10:13, 10:13] = True
    expected[13, 10:13, 10:13] = True  # rim joins: smoothed candidate >= 0.1 next to the lesion, z >= 0.95
    np.testing.assert_array_equal(wmh, expected)
    # without a template the spot at (4:6)^3 is kept; the isolated mild voxel never is (not a candidate nearby)
    no_prior = wmh_mask(flair, brain, None, (1.0, 1.0, 1.0))
    assert no_prior[4:6, 4:6, 4:6].all() and not no_prior[18, 18, 4]
    # a stricter threshold drops the rim: z >= 2 keeps only the lesion core
    strict = wmh_mask(flair, brain, prior, (1.0, 1.0, 1.0), min_z=2.0)
    np.testing.assert_array_equal(strict, wmh & (z >= 2.0))
    with pytest.raises(ValueError, match="one grid"):
        wmh_mask(flair, brain, prior[:-1], (1.0, 1.0, 1.0))


def test_lesion_prior_is_deep_white_matter():
    wm = np.zeros((30, 30, 30))
    wm[5:25, 5:25, 5:25] = 0.9
    prior = lesion_prior(wm, (1.0, 1.0, 1.0), erode_mm=3.0, sigma_mm=1.0)
    assert prior.max() == pytest.approx(1.0)
    assert prior[15, 15, 15] == pytest.approx(1.0, abs=1e-6)  # deep inside
    assert prior[0, 15, 15] < 1e-3  # outside the WM
    assert prior[15, 15, 15] > prior[6, 15, 15] > prior[2, 15, 15]  # falls off towards the WM edge
    with pytest.raises(ValueError, match="reaches"):
        lesion_prior(np.zeros((4, 4, 4)), (1.0, 1.0, 1.0))


def test_chunked_predict_gives_the_labels_of_one_predict():
    from sklearn.mixture import GaussianMixture

    from brainsr.segment.tissue import _predict

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(m, 0.3, (400, 3)) for m in (-1.0, 0.0, 1.2)])
    gmm = GaussianMixture(3, covariance_type="full", random_state=0).fit(x)
    np.testing.assert_array_equal(_predict(gmm, x, chunk=97), gmm.predict(x))


def test_class_and_truth_masks_equal_isin_on_any_label_image() -> None:
    from brainsr.segment.run import CLASS_LABELS, TRUTH_CLASSES, class_masks, truth_masks

    labels = np.random.default_rng(3).integers(0, 12, size=(9, 8, 7))
    names = {n for group in TRUTH_CLASSES.values() for n in group}
    lookup = {n: i for i, n in enumerate(sorted(names), start=1)}
    for img in (labels, labels.astype(np.uint8), labels - 3):  # the last one is the np.isin fallback
        for name, mask in class_masks(img).items():
            assert np.array_equal(mask, np.isin(img, CLASS_LABELS[name]))
        for name, mask in truth_masks(img, lookup).items():
            assert np.array_equal(mask, np.isin(img, [lookup[n] for n in TRUTH_CLASSES[name]]))
    assert class_masks(labels)["csf"].any()
