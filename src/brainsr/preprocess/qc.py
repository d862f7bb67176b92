"""Quality control of the preprocessing (paper 3.1): alignment figures, alignment quality and accuracy vs ground truth.

The paper checks its alignment to the MNI template visually; on the synthetic cohort the ground truth makes the
checks quantitative:

* target registration error (TRE): template brain points are mapped to each sequence's native scanner space both
  through the estimated transform chain (ANTs, LPS) and through the ground truth (template -> subject coordinate
  field, then the session's subject -> scanner pose, RAS), and the distances summarised;
* brain-mask Dice and volumes against the ground-truth intracranial mask on the native T1w grid;
* residual bias: coefficient of variation of white-matter intensities before and after bias-field correction.

Ground-truth conventions (written by :mod:`brainsr.simulate.cohort`): a ``from-A_to-B_mode-image_xfm.nii.gz``
coordinate field lies on a (4 mm) grid of frame B and holds at each voxel the RAS mm coordinates of the
corresponding point in frame A; trilinear interpolation (clamped at the border) defines the field between voxels.
So ``from-MNI152NLin2009cSym_to-subject`` is sampled at template points and yields subject-frame points.
``from-subject_to-{seq}_mode-image_xfm.txt`` is a 4x4 RAS matrix mapping subject-frame mm to scanner mm.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import nibabel as nib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy import ndimage as ndi

from brainsr.base.arrays import bounding_box, dice
from brainsr.base.display import display_window, orthogonal_slices

__all__ = [
    "TRE_METRICS",
    "alignment_figure",
    "alignment_quality",
    "bias_variation",
    "bias_variations",
    "brain_points",
    "read_pose",
    "session_accuracy",
    "summarise_accuracy",
    "tre",
    "true_scanner_points",
    "truth_on_grid",
]

PathLike = str | os.PathLike
#: Summary statistics of the TRE returned by :func:`tre` (``session_accuracy`` reports the first three).
TRE_METRICS = ("tre_mean_mm", "tre_median_mm", "tre_p95_mm", "tre_max_mm")
#: Truncation (in SDs) of the Gaussian filter of :func:`bias_variation` (scipy's default).
GAUSS_TRUNCATE = 4.0
#: Fewest eroded white-matter voxels :func:`bias_variation` accepts before falling back to the uneroded mask.
MIN_WM_VOXELS = 64
_COLUMNS = ["subject", "session", "metric", "prep", "sequence", "value"]
_EDGE_RGB = (1.0, 0.2, 0.2)
_MASK_COLOUR = "#00d5ff"


# ------------------------------------------------------------------------------------------------ basic measures


def brain_points(mask: nib.Nifti1Image, step_mm: float = 4.0) -> np.ndarray:
    """(N, 3) RAS world coordinates of the mask's voxels on a lattice of about ``step_mm`` spacing.

    The stride along each voxel axis is ``round(step_mm / voxel size)`` (at least 1), starting at voxel 0.
    """
    data = np.asarray(mask.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    zooms = np.linalg.norm(mask.affine[:3, :3], axis=0)
    strides = [max(1, round(step_mm / z)) for z in zooms]
    sub = data[:: strides[0], :: strides[1], :: strides[2]] > 0.5
    ijk = np.argwhere(sub) * np.asarray(strides)
    return nib.affines.apply_affine(mask.affine, ijk).astype(float).reshape(-1, 3)


def read_pose(path: PathLike) -> np.ndarray:
    """A 4x4 ground-truth pose (text, ``#`` comment lines): subject-frame mm -> scanner mm, RAS."""
    m = np.loadtxt(str(path), comments="#", dtype=float)
    if m.shape != (4, 4) or not np.allclose(m[3], [0, 0, 0, 1]):
        raise ValueError(f"{path}: expected a 4x4 affine matrix, got shape {m.shape}")
    return m


def _sample_field(field: nib.Nifti1Image, points_ras: np.ndarray) -> np.ndarray:
    """Trilinear sample (clamped at the border, as the simulator does) of a coordinate field at RAS points."""
    data = np.asarray(field.dataobj, dtype=np.float64)
    if data.ndim == 5 and data.shape[3] == 1:
        data = data[:, :, :, 0, :]
    if data.ndim != 4 or data.shape[3] != 3:
        raise ValueError(f"coordinate field must have shape (X, Y, Z, [1,] 3), got {field.shape}")
    ijk = nib.affines.apply_affine(np.linalg.inv(field.affine), np.asarray(points_ras, float).reshape(-1, 3)).T
    return np.stack([ndi.map_coordinates(data[..., c], ijk, order=1, mode="nearest") for c in range(3)], axis=-1)


def true_scanner_points(
    points_ras: np.ndarray, template_to_subject_field: PathLike | nib.Nifti1Image, pose: PathLike | np.ndarray
) -> np.ndarray:
    """Ground-truth scanner positions (RAS mm) of template points: ``pose @ F_inv(p)`` (paper 3.1 QC).

    ``template_to_subject_field`` is the ``from-MNI152NLin2009cSym_to-subject`` coordinate field (on a template
    grid, values subject-frame mm); ``pose`` the session's ``from-subject_to-{seq}`` 4x4 (file or array).
    """
    field, m = _field_and_pose(template_to_subject_field, pose)
    return nib.affines.apply_affine(m, _sample_field(field, points_ras))


def _field_and_pose(
    field: PathLike | nib.Nifti1Image, pose: PathLike | np.ndarray
) -> tuple[nib.Nifti1Image, np.ndarray]:
    """A ground-truth coordinate field (file or image) and pose (file or 4x4 array), loaded."""
    img = field if isinstance(field, nib.Nifti1Image) else nib.load(str(field))
    return img, (np.asarray(pose, float) if isinstance(pose, np.ndarray) else read_pose(pose))


def _through_chain(points_ras: np.ndarray, chain: Sequence[str]) -> np.ndarray:
    """RAS points mapped through an ``ants.apply_transforms``-style chain (fixed -> moving); empty: identity."""
    from brainsr.preprocess.register import map_points, ras_to_lps

    return ras_to_lps(map_points(ras_to_lps(points_ras), [str(c) for c in chain])) if chain else points_ras


def truth_on_grid(
    grid: nib.Nifti1Image,
    truth: nib.Nifti1Image,
    chain: Sequence[str],
    pose: PathLike | np.ndarray,
    subject_to_template_field: PathLike | nib.Nifti1Image,
) -> np.ndarray:
    """Ground-truth labels on a preprocessed image's grid, where its voxels image the anatomy (paper 3.8.3 checks).

    Each voxel of ``grid`` (template frame) goes through the prep's transform ``chain`` (template -> native T1w
    scanner, as the image was resampled), the inverse of the session's true ``pose`` (subject -> scanner) and the
    true ``from-subject_to-MNI152NLin2009cSym`` field, and takes the nearest label of the template-frame
    ``truth`` (0 outside it). So the labels move with the registration's error, and a segmentation is judged on
    what its image shows, not on the registration.
    """
    field, m = _field_and_pose(subject_to_template_field, pose)
    ijk = np.indices(grid.shape[:3]).reshape(3, -1).T
    scanner = _through_chain(nib.affines.apply_affine(grid.affine, ijk), chain)
    template = _sample_field(field, nib.affines.apply_affine(np.linalg.inv(m), scanner))
    vox = np.rint(nib.affines.apply_affine(np.linalg.inv(truth.affine), template)).astype(int)
    labels = np.asarray(truth.dataobj)
    inside = np.all((vox >= 0) & (vox < np.asarray(labels.shape[:3])), axis=1)
    out = np.zeros(len(vox), labels.dtype)
    out[inside] = labels[tuple(vox[inside].T)]
    return out.reshape(grid.shape[:3])


def tre(points_ras: np.ndarray, chain: list[str], truth_ras: np.ndarray) -> dict:
    """Target registration error of template points mapped through an ANTs transform chain (paper 3.1 QC).

    ``chain`` is an ``ants.apply_transforms``-style list mapping template (fixed) points to the native scanner
    space; an empty chain is the identity. Returns mean, median, 95th percentile and maximum distance (mm).
    """
    pts = np.asarray(points_ras, float).reshape(-1, 3)
    truth = np.asarray(truth_ras, float).reshape(-1, 3)
    if pts.shape != truth.shape or len(pts) == 0:
        raise ValueError(f"tre: need matching non-empty point sets, got {pts.shape} and {truth.shape}")
    est = _through_chain(pts, chain)
    d = np.linalg.norm(est - truth, axis=1)
    return dict(
        zip(
            TRE_METRICS,
            (float(d.mean()), float(np.median(d)), float(np.percentile(d, 95)), float(d.max())),
            strict=True,
        )
    )


# ------------------------------------------------------------------------------------------------ alignment quality
def _same_grid(a: nib.Nifti1Image, b: nib.Nifti1Image, what: str) -> None:
    if a.shape[:3] != b.shape[:3] or not np.allclose(a.affine, b.affine, atol=1e-3):
        raise ValueError(f"{what}: images are not on the same grid ({a.shape[:3]} vs {b.shape[:3]})")


def _data(img: nib.Nifti1Image) -> np.ndarray:
    """The image's float64 data (3D), read once per image object (nibabel's cache; callers do not modify it)."""
    d = img.get_fdata(dtype=np.float64)
    return d[..., 0] if d.ndim == 4 and d.shape[3] == 1 else d


def _nmi(a: np.ndarray, b: np.ndarray, bins: int = 32) -> float:
    """Studholme's normalised mutual information (H(A) + H(B)) / H(A, B) of paired samples."""
    if a.size == 0:
        return float("nan")
    joint, _, _ = np.histogram2d(a, b, bins=bins)
    p = joint / joint.sum()

    def entropy(q: np.ndarray) -> float:
        q = q[q > 0]
        return float(-(q * np.log(q)).sum())

    h_ab = entropy(p.ravel())
    if h_ab == 0:
        return 2.0  # both constant: perfectly predictable
    return (entropy(p.sum(1)) + entropy(p.sum(0))) / h_ab


def alignment_quality(
    image: nib.Nifti1Image, template: nib.Nifti1Image, template_mask: nib.Nifti1Image, subject_mask: nib.Nifti1Image
) -> dict:
    """Similarity of a subject T1w resampled to the template grid with the template (paper 3.1 QC).

    Returns ``ncc`` (Pearson correlation inside the template mask), ``nmi`` (Studholme, 32 bins, inside the union
    of both masks) and ``mask_dice`` (subject brain mask vs template mask); all inputs on the same grid.
    """
    for other, what in ((template, "template"), (template_mask, "template mask"), (subject_mask, "subject mask")):
        _same_grid(image, other, f"alignment_quality ({what})")
    x, t = _data(image), _data(template)
    tm, sm = _data(template_mask) > 0.5, _data(subject_mask) > 0.5
    a, b = x[tm], t[tm]
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        ncc = float("nan")
    else:
        ncc = float(np.corrcoef(a, b)[0, 1])
    union = tm | sm
    return {"ncc": ncc, "nmi": float(_nmi(x[union], t[union])), "mask_dice": dice(sm, tm)}


# ------------------------------------------------------------------------------------------------ figure
def _edges(slice_: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    from skimage.feature import canny

    s = slice_.astype(float)
    rng = float(s.max() - s.min())
    if rng == 0:
        return np.zeros(s.shape, bool)
    return canny((s - s.min()) / rng, sigma=sigma)


def alignment_figure(
    images: dict[str, nib.Nifti1Image], template: nib.Nifti1Image, mask: nib.Nifti1Image, title: str
) -> Figure:
    """Alignment check figure (paper 3.1): one row per sequence, axial/coronal/sagittal slices through the mask
    centroid; template edges (Canny) and the brain-mask contour drawn over each image. All on one grid."""
    if not images:
        raise ValueError("alignment_figure: no images")
    template = nib.as_closest_canonical(template)
    mask = nib.as_closest_canonical(mask)
    _same_grid(template, mask, "alignment_figure (mask)")
    canon = {}
    for name, img in images.items():
        canon[name] = nib.as_closest_canonical(img)
        _same_grid(canon[name], template, f"alignment_figure ({name})")
    zooms = np.linalg.norm(template.affine[:3, :3], axis=0)
    t, m = _data(template), _data(mask) > 0.5
    centre = tuple(round(float(c)) for c in (ndi.center_of_mass(m) if m.any() else np.array(m.shape) / 2))
    aspects = [zooms[1] / zooms[0], zooms[2] / zooms[0], zooms[2] / zooms[1]]
    t_edges = [_edges(s) for s in orthogonal_slices(t, centre)]
    m_slices = orthogonal_slices(m.astype(float), centre)
    views = ("axial", "coronal", "sagittal")

    nrow = len(canon)
    fig = Figure(figsize=(3.4 * 3, 3.2 * nrow + 0.6), layout="constrained")
    axes = fig.subplots(nrow, 3, squeeze=False)
    for r, (name, img) in enumerate(canon.items()):
        d = _data(img)
        lo, hi = display_window(d, m)
        for c, s in enumerate(orthogonal_slices(d, centre)):
            ax = axes[r, c]
            ax.imshow(s, cmap="gray", vmin=lo, vmax=hi, origin="lower", aspect=aspects[c], interpolation="nearest")
            overlay = np.zeros((*t_edges[c].shape, 4))
            overlay[t_edges[c]] = (*_EDGE_RGB, 0.75)
            ax.imshow(overlay, origin="lower", aspect=aspects[c], interpolation="nearest")
            if m_slices[c].any():
                ax.contour(m_slices[c], levels=[0.5], colors=_MASK_COLOUR, linewidths=1.2)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(views[c])
            if c == 0:
                ax.set_ylabel(name)
    handles = [
        Line2D([], [], color=_EDGE_RGB, lw=1.5, label="template edges"),
        Line2D([], [], color=_MASK_COLOUR, lw=1.5, label="brain mask"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False)
    fig.suptitle(title)
    return fig


# ------------------------------------------------------------------------------------------------ bias
def _wm_selection(dseg: nib.Nifti1Image, wm_label: int, min_voxels: int, within: np.ndarray | None) -> np.ndarray:
    """The white-matter voxels :func:`bias_variation` uses: eroded by 1 voxel, or uneroded if erosion leaves fewer
    than ``min_voxels``. The erosion runs on the bounding box of the WM widened by 1 voxel (the same result)."""
    wm = np.rint(_data(dseg)) == wm_label
    if within is not None:
        wm &= within
    if not wm.any():
        return wm
    box = bounding_box(wm, 1)
    eroded = np.zeros_like(wm)
    eroded[box] = ndi.binary_erosion(wm[box], iterations=1)
    return eroded if int(eroded.sum()) >= min_voxels else wm


def bias_variation(
    image: nib.Nifti1Image,
    dseg: nib.Nifti1Image,
    wm_label: int = 3,
    min_voxels: int = MIN_WM_VOXELS,
    sigma_mm: float = 10.0,
    within: np.ndarray | None = None,
) -> float:
    """Low-frequency intensity variation in the ground-truth white matter: residual bias field (3.1).

    The image is averaged over the 1-voxel-eroded white matter with a Gaussian of ``sigma_mm`` (normalised
    convolution, so only WM voxels contribute); the coefficient of variation (SD / mean) of that local mean over
    the WM voxels measures the smooth multiplicative field while noise and partial volume average out. Falls back
    to the uneroded WM when erosion leaves fewer than ``min_voxels``; NaN if none. ``within`` restricts the WM
    (e.g. to the voxels a brain mask kept, so raw and corrected images are compared over the same voxels). The
    filtering is cropped to where the WM reaches (:class:`_WMFilter`), with the values of the whole-image filter.
    """
    return bias_variations([image], dseg, wm_label, min_voxels, sigma_mm, within)[0]


def bias_variations(
    images: Sequence[nib.Nifti1Image],
    dseg: nib.Nifti1Image,
    wm_label: int = 3,
    min_voxels: int = MIN_WM_VOXELS,
    sigma_mm: float = 10.0,
    within: np.ndarray | None = None,
) -> list[float]:
    """:func:`bias_variation` of each of ``images`` (one grid, e.g. a raw and its corrected image) over the same
    white matter: the selection and its filtered weights are computed once (the values are those of single calls)."""
    for image in images:
        _same_grid(image, dseg, "bias_variation")
    sel = _wm_selection(dseg, wm_label, min_voxels, within)
    filters: dict[tuple[float, ...], _WMFilter] = {}
    out = []
    for image in images:
        x = _data(image)
        if not sel.any() or x[sel].mean() == 0:
            out.append(float("nan"))
            continue
        if sigma_mm <= 0:  # no low-pass: the plain coefficient of variation
            vals = x[sel]
        else:
            sigma = tuple(sigma_mm / np.asarray(image.header.get_zooms()[:3], float))
            vals = filters.setdefault(sigma, _WMFilter(sel, np.asarray(sigma))).local_means(x)
        out.append(float(vals.std() / vals.mean()))
    return out


class _WMFilter:
    """Normalised convolution at the ``sel`` voxels (C order): ``G*(x·sel) / max(G*sel, 1e-9)`` with ``G`` scipy's
    ``gaussian_filter(·, sigma)`` (reflecting border, radius ``int(4 sigma + 0.5)``), bit for bit, on less data.

    Both filtered arrays are zero outside the selection's bounding box, so each 1D pass (axes in scipy's order)
    runs on that box widened by half the radius (clipped to the image): a tap that reflects off the crop's edge lands
    on a zero, as it would inside the whole image (or the crop's edge is the image's). After the pass along an axis
    only the box's own rows along it are kept, which is all the later passes and the result read. The filtered
    selection (the weights) is computed once for every image.
    """

    def __init__(self, sel: np.ndarray, sigma: np.ndarray) -> None:
        self.sel, self.sigma = sel, sigma
        self.radius = [int(GAUSS_TRUNCATE * s + 0.5) for s in sigma]
        self.reach = bounding_box(sel, [(r + 1) // 2 for r in self.radius])
        core = bounding_box(sel)
        self.inner = sel[core]
        self.keep = [slice(c.start - r.start, c.stop - r.start) for c, r in zip(core, self.reach, strict=True)]
        self.weight = np.maximum(self._blur(sel[self.reach].astype(np.float64))[self.inner], 1e-9)

    def _blur(self, a: np.ndarray) -> np.ndarray:
        for axis, keep in enumerate(self.keep):
            a = ndi.gaussian_filter1d(a, self.sigma[axis], axis=axis, mode="reflect", radius=self.radius[axis])
            a = a[(slice(None),) * axis + (keep,)]
        return a

    def local_means(self, x: np.ndarray) -> np.ndarray:
        """The Gaussian-weighted mean of ``x`` over the selection, at each selected voxel."""
        local = self._blur(np.where(self.sel[self.reach], x[self.reach], 0).astype(np.float64))
        return local[self.inner] / self.weight


# ------------------------------------------------------------------------------------------------ per-session accuracy
def _resample_nearest(src: nib.Nifti1Image, ref: nib.Nifti1Image) -> np.ndarray:
    """``src`` sampled (nearest neighbour, zero outside) on ``ref``'s grid through world coordinates."""
    vox = np.linalg.inv(src.affine) @ ref.affine
    data = _data(src)
    return ndi.affine_transform(
        data, vox[:3, :3], offset=vox[:3, 3], output_shape=ref.shape[:3], order=0, mode="constant", cval=0
    )


def _voxel_ml(img: nib.Nifti1Image) -> float:
    return float(abs(np.linalg.det(img.affine[:3, :3]))) / 1000.0


def session_accuracy(
    *,
    subject: str,
    session: str,
    template_mask: str,
    template_to_subject_field: str,
    poses: dict[str, str],
    chains: dict[str, dict[str, list[str]]],
    brain_mask: str,
    gt_brain_mask: str,
    raw: dict[str, str],
    corrected: dict[str, str],
    gt_dseg: dict[str, str],
    step_mm: float = 4.0,
    bias_sigma_mm: float = 10.0,
) -> pd.DataFrame:
    """Accuracy of one session's preprocessing against the ground truth (paper 3.1), as a long table.

    Rows (``subject, session, metric, prep, sequence, value``): TRE mean/median/p95 per prep and sequence
    (``chains[prep][seq]`` maps template points to the native ``seq`` scanner space); ``mask_dice``,
    ``mask_volume_ml`` and ``gt_volume_ml`` of the brain mask (resampled, nearest, onto the ground-truth T1w
    grid; prep ``""``, sequence T1w); ``bias_cv_raw`` and ``bias_cv_corrected`` per sequence (prep ``""``).
    """
    rows: list[tuple] = []

    def add(metric: str, prep: str, seq: str, value: float) -> None:
        rows.append((subject, session, metric, prep, seq, float(value)))

    pts = brain_points(nib.load(str(template_mask)), step_mm)
    field = nib.load(str(template_to_subject_field))
    truth = {seq: true_scanner_points(pts, field, pose) for seq, pose in poses.items()}
    for prep, per_seq in chains.items():
        for seq, chain in per_seq.items():
            if seq not in truth:
                raise KeyError(f"session_accuracy: no ground-truth pose for sequence {seq!r}")
            stats = tre(pts, chain, truth[seq])
            for metric in TRE_METRICS[:3]:
                add(metric, prep, seq, stats[metric])

    est, gt = nib.load(str(brain_mask)), nib.load(str(gt_brain_mask))
    on_gt = _resample_nearest(est, gt) > 0.5
    gt_mask = _data(gt) > 0.5
    add("mask_dice", "", "T1w", dice(on_gt, gt_mask))
    add("mask_volume_ml", "", "T1w", float((_data(est) > 0.5).sum()) * _voxel_ml(est))
    add("gt_volume_ml", "", "T1w", float(gt_mask.sum()) * _voxel_ml(gt))

    for seq, path in raw.items():
        # RAS+ throughout: the corrected images are written in it (load_scan), raw scans and truth may be stored
        # in any axis order
        seg, raw_img = (nib.as_closest_canonical(nib.load(str(p))) for p in (gt_dseg[seq], path))
        if seq not in corrected:
            add("bias_cv_raw", "", seq, bias_variation(raw_img, seg, sigma_mm=bias_sigma_mm))
            continue
        # both measured over the same voxels: WM kept by brain extraction
        fixed = nib.as_closest_canonical(nib.load(str(corrected[seq])))
        within = _data(fixed) > 0
        before, after = bias_variations([raw_img, fixed], seg, sigma_mm=bias_sigma_mm, within=within)
        add("bias_cv_raw", "", seq, before)
        add("bias_cv_corrected", "", seq, after)
    return pd.DataFrame(rows, columns=_COLUMNS)


def _protocol_of(protocols: dict[str, str], subject: str, session: str) -> str | None:
    for key in (f"{subject}_{session}", f"{subject}/{session}", subject):
        if key in protocols:
            return protocols[key]
    return None


def summarise_accuracy(table: pd.DataFrame, protocols: dict[str, str] | None = None) -> pd.DataFrame:
    """Mean, SD (n - 1) and n of each metric per prep, sequence and session type (paper 3.1 QC summary).

    With ``protocols`` (keys ``"{subject}_{session}"``, ``"{subject}/{session}"`` or ``subject``; values protocol
    names) rows per session type and protocol are added; the ``protocol`` column is ``""`` for all protocols.
    """
    keys = ["metric", "prep", "sequence", "session"]
    cols = [*keys, "protocol", "n", "mean", "sd"]
    if table.empty:
        return pd.DataFrame(columns=cols)
    t = table.copy()
    t["protocol"] = ""
    parts = [t]
    if protocols:
        p = t.copy()
        p["protocol"] = [_protocol_of(protocols, s, e) for s, e in zip(p["subject"], p["session"], strict=True)]
        parts.append(p[p["protocol"].notna()])
    both = pd.concat(parts, ignore_index=True)
    g = both.groupby([*keys, "protocol"], sort=True, dropna=False)["value"]
    out = g.agg(n="count", mean="mean", sd="std").reset_index()
    return out[cols]
