"""Tissue segmentation for the evaluation (paper 3.8.1 and 3.8.3).

Two segmentations, each a Gaussian mixture fitted by expectation-maximisation (scikit-learn), seeded:

- :func:`t1_tissues`: CSF / GM / WM masks from the brain-extracted research T1w (a 4-component mixture on T1w
  intensity: darkest CSF, the two heaviest of the rest GM < WM, a small extra component to the nearest). The
  paper used FSL FAST for these masks; every method is then judged on the same masks.
- :func:`multispectral_classes`: the paper's multispectral clustering of FLAIR, T2w and T1w into CSF, veins and
  sinuses, pial layers / CSF-parenchyma partial volume, and normal tissue (GM and WM). The mixture has more
  components than classes; each component is named after the class whose prototype (the paper's description of
  the class contrast, in brain z-score units of (FLAIR, T2w, T1w)) is nearest to the component's mean:
  CSF hypointense in T1w and FLAIR, hyperintense in T2w; veins and sinuses hypointense in T2w with mid-to-low
  T1w and FLAIR; pial layers hypointense in T1w, hyperintense in FLAIR and T2w; normal tissue mid-range.
  Two classes are too small or too thin for a mixture component of their own, so two rules follow the mixture:
  the pial layer is also every CSF voxel touching normal tissue (:func:`pial_shell`), and veins and sinuses are
  the flow voids (:func:`flow_voids`): voxels nearer CSF than tissue in T1w and darker in T2w than tissue, thicker
  than the rim of partial volume with the skull at the mask's edge (no mixture component is named sinus).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi

if TYPE_CHECKING:
    from sklearn.mixture import GaussianMixture

__all__ = [
    "CLASSES",
    "PROTOTYPES",
    "T1_TISSUES",
    "flow_voids",
    "multispectral_classes",
    "pial_shell",
    "t1_tissues",
    "zscore_in",
]

#: Multispectral classes (paper 3.8.3): label value -> name. 0 is outside the brain.
CLASSES: dict[int, str] = {1: "csf", 2: "sinus", 3: "pial", 4: "tissue"}
#: The label value of each class name.
_VALUE: dict[str, int] = {name: v for v, name in CLASSES.items()}
#: Class prototypes in (FLAIR, T2w, T1w) z-scores within the brain; the GM and WM prototypes both name "tissue".
#: Veins and sinuses have none: a mixture component near their contrast (dark in every sequence) is the partial
#: volume of outer CSF with the skull at the mask's edge (up to 60 ml on the default cohort's research scans,
#: against 9 ml of true sinus); :func:`flow_voids` finds them instead.
PROTOTYPES: tuple[tuple[str, tuple[float, float, float]], ...] = (
    ("csf", (-1.5, 1.5, -1.5)),
    ("pial", (0.8, 0.8, -0.8)),
    ("tissue", (0.5, 0.0, 0.0)),  # grey matter
    ("tissue", (0.5, -1.0, 1.0)),  # white matter
)
#: Rows per :func:`_predict` call.
PREDICT_CHUNK = 65_536
#: T1w tissue labels: 1 CSF, 2 GM, 3 WM (0 outside the brain).
T1_TISSUES: dict[int, str] = {1: "csf", 2: "gm", 3: "wm"}


def zscore_in(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(image - mean) / SD with the mean and SD of the voxels inside ``mask`` (float64)."""
    values = np.asarray(image, np.float64)[mask]
    sd = values.std()
    if values.size == 0 or sd == 0:
        raise ValueError("cannot z-score: the brain mask is empty or the image is constant inside it")
    return (np.asarray(image, np.float64) - values.mean()) / sd


def _sample(n: int, max_samples: int, seed: int) -> np.ndarray:
    """Indices of at most ``max_samples`` of ``n`` voxels, drawn without replacement with ``seed`` (sorted)."""
    if n <= max_samples:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False))


def _fit_mixture(
    features: np.ndarray, n_components: int, *, seed: int, max_samples: int, max_iter: int
) -> GaussianMixture:
    """EM fit of a full-covariance Gaussian mixture (k-means start, ``seed``) on at most ``max_samples`` rows."""
    from sklearn.mixture import GaussianMixture  # scikit-learn only where a mixture is fitted

    gmm = GaussianMixture(n_components, covariance_type="full", random_state=seed, max_iter=max_iter)
    return gmm.fit(features[_sample(features.shape[0], max_samples, seed)])


def _predict(gmm: GaussianMixture, features: np.ndarray, chunk: int = PREDICT_CHUNK) -> np.ndarray:
    """``gmm.predict(features)`` (paper 3.8.3 labels) computed ``chunk`` rows at a time: the same per-row arithmetic,
    so the same labels, with the (rows x components) work arrays small enough to stay in cache (~4x less CPU)."""
    return np.concatenate([gmm.predict(features[i : i + chunk]) for i in range(0, features.shape[0], chunk)])


def _check(brain: np.ndarray, images: Mapping[str, np.ndarray]) -> np.ndarray:
    brain = np.asarray(brain, bool)
    for name, img in images.items():
        if np.shape(img) != brain.shape:
            raise ValueError(f"{name} {np.shape(img)} and the brain mask {brain.shape} differ in shape")
    if not brain.any():
        raise ValueError("the brain mask is empty")
    return brain


def t1_tissues(
    t1: np.ndarray,
    brain: np.ndarray,
    *,
    n_components: int = 4,
    seed: int = 0,
    max_samples: int = 200_000,
    max_iter: int = 200,
) -> np.ndarray:
    """uint8 labels 1 CSF, 2 GM, 3 WM inside ``brain`` by a 1D Gaussian mixture on T1w intensity.

    The mixture (seeded k-means start, at most ``max_samples`` voxels) has ``n_components`` >= 3 components: the
    darkest is CSF; of the others, the two with the largest weights are GM (darker) and WM (brighter); any further
    component (partial volume, or scalp fat / vessels left inside a coarse brain mask, which would otherwise take
    the WM class) goes to whichever of the three has the nearest mean.
    """
    if n_components < 3:
        raise ValueError(f"t1_tissues needs at least 3 mixture components, got {n_components}")
    brain = _check(brain, {"T1w": t1})
    x = np.asarray(t1, np.float64)[brain][:, None]
    gmm = _fit_mixture(x, n_components, seed=seed, max_samples=max_samples, max_iter=max_iter)
    means = gmm.means_[:, 0]
    csf = int(np.argmin(means))
    rest = [k for k in np.argsort(-gmm.weights_) if k != csf]
    gm, wm = sorted(rest[:2], key=lambda k: means[k])
    anchors = np.array([csf, gm, wm])
    nearest = np.argmin(np.abs(means[:, None] - means[anchors][None, :]), axis=1)
    nearest[anchors] = [0, 1, 2]
    lut = (nearest + 1).astype(np.uint8)
    labels = np.zeros(brain.shape, np.uint8)
    labels[brain] = lut[_predict(gmm, x)]
    return labels


def pial_shell(labels: np.ndarray) -> np.ndarray:
    """Pial layers / CSF-parenchyma partial volume (paper 3.8.3, class 3) beyond the mixture: the CSF-class voxels
    in the 26-neighbourhood of a normal-tissue voxel (the shell of fluid touching the cortex)."""
    tissue = labels == _VALUE["tissue"]
    return (labels == _VALUE["csf"]) & ndi.binary_dilation(tissue, ndi.generate_binary_structure(3, 3))


def flow_voids(t2: np.ndarray, t1: np.ndarray, labels: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Veins and sinuses (paper 3.8.3, class 2: hypointense in T2w, low T1w and FLAIR) beyond the mixture.

    Candidates: brain voxels whose T1w is nearer the CSF class's mean than the normal tissue class's and whose
    T2w is below the normal tissue class's mean (``t2``, ``t1`` z-scored in the brain; classes from ``labels``).
    A 6-connected opening keeps those at least three voxels across (the thin rim where the mask's edge meets the
    skull, dark in every sequence, goes), which then grow back by one voxel inside the candidates.
    """
    csf, tissue = brain & (labels == _VALUE["csf"]), brain & (labels == _VALUE["tissue"])
    if not csf.any() or not tissue.any():
        return np.zeros(brain.shape, bool)
    dark = brain & (t1 < (t1[csf].mean() + t1[tissue].mean()) / 2) & (t2 < t2[tissue].mean())
    cross = ndi.generate_binary_structure(3, 1)
    return ndi.binary_dilation(ndi.binary_opening(dark, cross), cross) & dark


def multispectral_classes(
    flair: np.ndarray,
    t2: np.ndarray,
    t1: np.ndarray,
    brain: np.ndarray,
    *,
    n_components: int = 8,
    seed: int = 0,
    max_samples: int = 200_000,
    max_iter: int = 200,
) -> tuple[np.ndarray, dict[int, str]]:
    """uint8 labels of :data:`CLASSES` inside ``brain`` and the class name given to each mixture component.

    Features are the three sequences z-scored within the brain; a ``n_components`` Gaussian mixture (full
    covariances, k-means initialisation, ``seed``) is fitted by EM on at most ``max_samples`` brain voxels and
    every brain voxel takes its most probable component's class (see the module docstring); then
    :func:`pial_shell` and :func:`flow_voids` add the voxels of the two small classes.
    """
    brain = _check(brain, {"FLAIR": flair, "T2w": t2, "T1w": t1})
    feats = np.stack([zscore_in(img, brain)[brain] for img in (flair, t2, t1)], axis=1)
    gmm = _fit_mixture(feats, n_components, seed=seed, max_samples=max_samples, max_iter=max_iter)
    names = [name for name, _ in PROTOTYPES]
    protos = np.array([p for _, p in PROTOTYPES])
    nearest = np.argmin(((gmm.means_[:, None, :] - protos[None]) ** 2).sum(-1), axis=1)
    component_class = {k: names[j] for k, j in enumerate(nearest)}
    lut = np.array([_VALUE[component_class[k]] for k in range(n_components)], np.uint8)
    labels = np.zeros(brain.shape, np.uint8)
    labels[brain] = lut[_predict(gmm, feats)]
    z = {name: np.zeros(brain.shape) for name in ("T2w", "T1w")}
    z["T2w"][brain], z["T1w"][brain] = feats[:, 1], feats[:, 2]
    labels[flow_voids(z["T2w"], z["T1w"], labels, brain)] = _VALUE["sinus"]
    labels[pial_shell(labels)] = _VALUE["pial"]
    return labels, component_class
