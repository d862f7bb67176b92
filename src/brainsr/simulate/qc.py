"""Realism checks of a simulated (or any ground-truth labelled) cohort: per-image contrast, noise and
intensity-range numbers, a cohort table, a per-protocol summary and an overview figure.

Every number is computed on the image's own voxel grid with the ground-truth tissue labels of that grid
(``derivatives/groundtruth/sub-*/ses-*/anat/*_space-<sequence>_desc-tissue_dseg.nii.gz``), so no resampling
is involved. Labels follow :data:`brainsr.simulate.mr.LABELS`.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from brainsr.io import atomic_savefig, atomic_write_tsv
from brainsr.paths import bids
from brainsr.simulate.mr import LABELS

__all__ = [
    "METRICS",
    "cohort_figure",
    "cohort_quality_table",
    "image_quality",
    "summarise_quality",
    "write_cohort_qc",
]

#: Numbers returned by :func:`image_quality`, in table order.
METRICS: tuple[str, ...] = (
    "mean_csf",
    "mean_gm",
    "mean_wm",
    "mean_wmh",
    "gm_wm_contrast_ratio",
    "wm2max",
    "noise_sigma",
    "snr_wm",
    "cnr_gm_wm",
    "wmh_wm_ratio",
)
#: Metrics summarised per protocol x sequence by :func:`summarise_quality`.
SUMMARY_METRICS: tuple[str, ...] = (
    "gm_wm_contrast_ratio",
    "wm2max",
    "snr_wm",
    "cnr_gm_wm",
    "wmh_wm_ratio",
)
_ORIENTATIONS = ("sagittal", "coronal", "axial")  # indexed by the RAS axis the slice normal points along
_RESEARCH = "research"


# ----------------------------------------------------------------------------------------------------
# single image
# ----------------------------------------------------------------------------------------------------
def _erosion_structure(zooms: Sequence[float]) -> np.ndarray:
    """3x3 box over the in-plane axes: axes whose voxel size is within 1.5x the smallest one.

    Isotropic images are eroded in 3D; thick-slice images only in-plane (one voxel of a 5 mm slice is
    already far more than the partial-volume band).
    """
    z = np.asarray(zooms[:3], float)
    shape = tuple(3 if zi <= 1.5 * z.min() else 1 for zi in z)
    return np.ones(shape, bool)


def _class_mask(labels: np.ndarray, value: int, structure: np.ndarray, min_voxels: int) -> np.ndarray:
    """Voxels of one label, eroded by one voxel; the uneroded set when erosion leaves < ``min_voxels``."""
    raw = labels == value
    eroded = ndi.binary_erosion(raw, structure=structure)
    return eroded if eroded.sum() >= min_voxels else raw


def _noise_sigma(
    data: np.ndarray, labels: np.ndarray, zooms: Sequence[float], margin_mm: float, min_voxels: int
) -> tuple[float, int]:
    """Rician noise sigma from air voxels farther than ``margin_mm`` from the head (2nd-moment estimator)."""
    air = labels == 0
    distance = ndi.distance_transform_edt(air, sampling=[float(z) for z in zooms[:3]])
    background = data[air & (distance > margin_mm)]
    if background.size < min_voxels:
        return float("nan"), int(background.size)
    return float(np.sqrt(np.mean(background.astype(np.float64) ** 2) / 2.0)), int(background.size)


def image_quality(
    image_path: str | os.PathLike,
    dseg_path: str | os.PathLike,
    brain_mask_path: str | os.PathLike,
    *,
    background_margin_mm: float = 10.0,
    min_voxels: int = 20,
    min_background_voxels: int = 200,
) -> dict[str, float]:
    """Realism numbers of one image, on its own grid, with its ground-truth labels.

    * ``mean_csf``, ``mean_gm`` (cortical/cerebellar label only), ``mean_wm``, ``mean_wmh``: mean intensity
      of each class after a one-voxel erosion (3x3 box in-plane; also through-plane when voxels are
      near-isotropic, see :func:`_erosion_structure`) so that partial-volume voxels do not dominate. A class
      the erosion empties (fewer than ``min_voxels`` left, e.g. small lesions on thick slices) is used
      uneroded.
      ``mean_wmh`` is NaN when the image has no WMH voxel.
    * ``gm_wm_contrast_ratio`` = mean GM / mean WM; ``wmh_wm_ratio`` = mean WMH / mean WM.
    * ``wm2max`` = median WM / 95th percentile of the intensities inside the brain (intracranial) mask
      (Li et al. 2022, section 3.8.1, after MRIQC).
    * ``noise_sigma``: Rician noise level from the air background (label 0) more than
      ``background_margin_mm`` away from any head voxel (distance in mm, so thick slices are handled).
      Estimator: sigma = sqrt(mean(M^2) / 2), the maximum-likelihood sigma of the Rayleigh distribution that
      magnitude noise follows where the true signal is zero (same expectation as the MRIQC-style
      SD(M) * sqrt(2 / (4 - pi)), with lower variance). NaN, with a warning, when fewer than
      ``min_background_voxels`` air voxels are available.
    * ``snr_wm`` = mean WM / sigma; ``cnr_gm_wm`` = |mean GM - mean WM| / sigma.

    Raises ValueError naming the file when WM or GM is absent or the three files are not on one grid.
    """
    img = nib.load(image_path)
    data = np.asarray(img.dataobj, dtype=np.float64)
    if data.ndim != 3:
        raise ValueError(f"{image_path}: expected a 3D image, got shape {data.shape}")
    labels = np.rint(np.asarray(nib.load(dseg_path).dataobj)).astype(np.int16)
    brain = np.asarray(nib.load(brain_mask_path).dataobj) > 0
    for path, arr in ((dseg_path, labels), (brain_mask_path, brain)):
        if arr.shape != data.shape:
            raise ValueError(f"{path}: shape {arr.shape} differs from the image {image_path} {data.shape}")
    for path in (dseg_path, brain_mask_path):
        if not np.allclose(nib.load(path).affine, img.affine, atol=1e-3):
            raise ValueError(f"{path}: affine differs from the image {image_path} (not on the same grid)")
    zooms = [float(z) for z in img.header.get_zooms()[:3]]
    structure = _erosion_structure(zooms)

    means: dict[str, float] = {}
    masks: dict[str, np.ndarray] = {}
    for name in ("csf", "gm", "wm", "wmh"):
        m = _class_mask(labels, LABELS[name], structure, min_voxels)
        masks[name] = m
        means[name] = float(data[m].mean()) if m.any() else float("nan")
    for name in ("wm", "gm"):
        if not masks[name].any():
            raise ValueError(f"{dseg_path}: no {name.upper()} voxels (label {LABELS[name]}) for {image_path}")
    if not brain.any():
        raise ValueError(f"{brain_mask_path}: empty brain mask")

    sigma, n_bg = _noise_sigma(data, labels, zooms, background_margin_mm, min_background_voxels)
    if not np.isfinite(sigma):
        warnings.warn(
            f"{image_path}: only {n_bg} air voxels beyond {background_margin_mm} mm of the head; "
            "noise-based metrics are NaN",
            stacklevel=2,
        )
    wm, gm = means["wm"], means["gm"]
    return {
        "mean_csf": means["csf"],
        "mean_gm": gm,
        "mean_wm": wm,
        "mean_wmh": means["wmh"],
        "gm_wm_contrast_ratio": gm / wm,
        "wm2max": float(np.median(data[masks["wm"]]) / np.percentile(data[brain], 95)),
        "noise_sigma": sigma,
        "snr_wm": wm / sigma,
        "cnr_gm_wm": abs(gm - wm) / sigma,
        "wmh_wm_ratio": means["wmh"] / wm,
    }


# ----------------------------------------------------------------------------------------------------
# cohort discovery
# ----------------------------------------------------------------------------------------------------
def _strip(label: str, prefix: str) -> str:
    return label[len(prefix) :] if label.startswith(prefix) else label


def _participants(bids_root: Path) -> dict[str, dict[str, str]]:
    path = bids_root / "participants.tsv"
    if not path.exists():
        return {}
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    return {_strip(row["participant_id"], "sub-"): dict(row) for _, row in df.iterrows()}


def _subjects(bids_root: Path, subjects: Iterable[str] | None) -> list[str]:
    found = sorted(p.name[4:] for p in bids_root.glob("sub-*") if p.is_dir())
    if subjects is None:
        return found
    wanted = [_strip(s, "sub-") for s in subjects]
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise ValueError(f"{bids_root}: no subject folder for {', '.join(missing)}")
    return wanted


def _sessions(bids_root: Path, subject: str) -> list[str]:
    return sorted(p.name[4:] for p in (bids_root / f"sub-{subject}").glob("ses-*") if p.is_dir())


def _session_protocols(bids_root: Path, subject: str) -> dict[str, str]:
    """Protocol of each session from ``sub-<label>_sessions.tsv`` (empty if absent)."""
    path = Path(bids(bids_root, subject=subject, suffix="sessions", extension=".tsv"))
    if not path.exists():
        return {}
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if "protocol" not in df:
        return {}
    return {_strip(r["session_id"], "ses-"): r["protocol"] for _, r in df.iterrows()}


def _sidecar(image_path: str) -> dict:
    path = Path(image_path.removesuffix(".nii.gz").removesuffix(".nii") + ".json")
    return json.loads(path.read_text()) if path.exists() else {}


def _group(participant: dict[str, str], gt_root: Path, subject: str) -> str:
    if participant.get("group"):
        return participant["group"]
    params = Path(bids(gt_root, subject=subject, desc="simulation", suffix="params", extension=".json"))
    if params.exists():
        return str(json.loads(params.read_text()).get("group", "n/a"))
    return "n/a"


def _protocol(session: str, from_sessions: dict[str, str], sidecar: dict, participant: dict[str, str]) -> str:
    """Session protocol: sessions.tsv, else the sidecar's ProtocolName, else participants.tsv for a session
    named like a clinical one; everything else is a research session."""
    if from_sessions.get(session):
        return from_sessions[session]
    if sidecar.get("ProtocolName"):
        return str(sidecar["ProtocolName"])
    if "clinical" in session and participant.get("protocol", "n/a") != "n/a":
        return participant["protocol"]
    return _RESEARCH


def _scanner(sidecar: dict, participant: dict[str, str]) -> str:
    parts = [sidecar.get("Manufacturer"), sidecar.get("ManufacturersModelName")]
    if sidecar.get("MagneticFieldStrength") is not None:
        parts.append(f"{float(sidecar['MagneticFieldStrength']):g}T")
    text = " ".join(str(p) for p in parts if p)
    return text or participant.get("scanner", "n/a")


def _orientation(affine: np.ndarray) -> str:
    """Acquisition plane from the direction of the third (slice) voxel axis."""
    return _ORIENTATIONS[int(np.argmax(np.abs(affine[:3, 2])))]


def _voxel_string(zooms: Sequence[float]) -> str:
    return "x".join(f"{float(z):.3g}" for z in zooms[:3])


def _gt_paths(gt_root: Path, subject: str, session: str, sequence: str) -> tuple[str, str]:
    common = {"subject": subject, "session": session, "datatype": "anat", "space": sequence}
    return (
        bids(gt_root, suffix="dseg", desc="tissue", **common),
        bids(gt_root, suffix="mask", desc="brain", **common),
    )


def _default_gt(bids_root: Path) -> Path:
    from brainsr.simulate.cohort import GT_NAME

    return bids_root / "derivatives" / GT_NAME


# ----------------------------------------------------------------------------------------------------
# tables
# ----------------------------------------------------------------------------------------------------
def cohort_quality_table(
    bids_root: str | os.PathLike,
    gt_root: str | os.PathLike | None = None,
    sequences: Sequence[str] = ("T1w", "T2w", "FLAIR"),
    subjects: Iterable[str] | None = None,
) -> pd.DataFrame:
    """One row per subject x session x sequence: identification, scanner, geometry and :data:`METRICS`.

    ``group`` comes from participants.tsv (else the simulation parameters), ``protocol`` from the subject's
    sessions.tsv (research sessions are ``"research"``), ``scanner`` and ``field_strength_T`` from the JSON
    sidecar, ``voxel_size_mm`` (``"0.47x0.47x6.5"``) and ``slice_spacing_mm`` from the NIfTI zooms (third
    voxel axis = slice axis), ``slice_thickness_mm`` from the sidecar (else the spacing). Missing images are
    skipped; an image without ground truth raises FileNotFoundError.
    """
    root = Path(bids_root)
    gt = Path(gt_root) if gt_root is not None else _default_gt(root)
    participants = _participants(root)
    rows = []
    for subject in _subjects(root, subjects):
        participant = participants.get(subject, {})
        group = _group(participant, gt, subject)
        from_sessions = _session_protocols(root, subject)
        for session in _sessions(root, subject):
            for sequence in sequences:
                image = bids(root, subject=subject, session=session, datatype="anat", suffix=sequence)
                if not Path(image).exists():
                    continue
                dseg, brain = _gt_paths(gt, subject, session, sequence)
                for path in (dseg, brain):
                    if not Path(path).exists():
                        raise FileNotFoundError(f"ground truth {path} missing for {image}")
                side = _sidecar(image)
                nii = nib.load(image)
                zooms = [float(z) for z in nii.header.get_zooms()[:3]]
                field = side.get("MagneticFieldStrength")
                rows.append(
                    {
                        "subject": subject,
                        "session": session,
                        "sequence": sequence,
                        "group": group,
                        "protocol": _protocol(session, from_sessions, side, participant),
                        "scanner": _scanner(side, participant),
                        "field_strength_T": float(field) if field is not None else float("nan"),
                        "orientation": _orientation(nii.affine),
                        "voxel_size_mm": _voxel_string(zooms),
                        "slice_thickness_mm": float(side.get("SliceThickness", zooms[2])),
                        "slice_spacing_mm": zooms[2],
                        "snr_wm_nominal": float(side.get("SimulatedSNR_WM", float("nan"))),
                        **image_quality(image, dseg, brain),
                    }
                )
    columns = [
        "subject",
        "session",
        "sequence",
        "group",
        "protocol",
        "scanner",
        "field_strength_T",
        "orientation",
        "voxel_size_mm",
        "slice_thickness_mm",
        "slice_spacing_mm",
        "snr_wm_nominal",
        *METRICS,
    ]
    return pd.DataFrame(rows, columns=columns)


def _protocol_order(name: str) -> tuple[int, str]:
    return (1, "") if name == _RESEARCH else (0, name)


def _fields(values: pd.Series) -> str:
    return "/".join(f"{f:g}" for f in sorted(values.dropna().unique()))


def _mean_sd(values: pd.Series) -> str:
    v = values.dropna()
    if v.empty:
        return "n/a"
    if len(v) == 1:
        return f"{v.iloc[0]:.3g}"
    return f"{v.mean():.3g} ± {v.std(ddof=1):.2g}"


def summarise_quality(df: pd.DataFrame, metrics: Sequence[str] = SUMMARY_METRICS) -> pd.DataFrame:
    """Mean ± SD (sample SD; the mean alone for a single image) of ``metrics`` per protocol x sequence.

    Rows are ordered P1..Pn, then ``research``; sequences in their first-seen order. Adds the number of images
    ``n``, the field strength and the most common voxel size. Cells are strings, ready for a Markdown table.
    """
    if df.empty:
        return pd.DataFrame(columns=["protocol", "sequence", "n", "field_strength_T", "voxel_size_mm", *metrics])
    seq_order = {s: i for i, s in enumerate(dict.fromkeys(df["sequence"]))}
    rows = []
    for (protocol, sequence), g in df.groupby(["protocol", "sequence"], sort=False):
        row = {
            "protocol": protocol,
            "sequence": sequence,
            "n": len(g),
            "field_strength_T": _fields(g["field_strength_T"]),
            "voxel_size_mm": g["voxel_size_mm"].mode().iloc[0],
        }
        row.update({m: _mean_sd(g[m]) for m in metrics})
        rows.append(row)
    rows.sort(key=lambda r: (_protocol_order(r["protocol"]), seq_order[r["sequence"]]))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------
# figure
# ----------------------------------------------------------------------------------------------------
def _display_slice(
    image_path: str, mask_path: str | None, dseg_path: str | None, plane: str
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """A 2D slice of ``plane`` (axial, coronal, sagittal) through the brain centre, in display orientation
    (row 0 at the top), cropped to the head; returns (slice, its brain mask or None, pixel aspect h/w)."""
    img = nib.as_closest_canonical(nib.load(image_path))
    data = np.asarray(img.dataobj, dtype=np.float32)
    zooms = img.header.get_zooms()[:3]
    axis = _ORIENTATIONS.index(plane)
    centre = data.shape[axis] // 2
    mask = None
    if mask_path and Path(mask_path).exists():
        mask = np.asarray(nib.as_closest_canonical(nib.load(mask_path)).dataobj) > 0
        if mask.any():
            centre = round(ndi.center_of_mass(mask)[axis])
    head = None
    if dseg_path and Path(dseg_path).exists():
        head = np.take(np.asarray(nib.as_closest_canonical(nib.load(dseg_path)).dataobj) > 0, centre, axis)
    sl = np.take(data, centre, axis)
    # canonical RAS: axial (x, y), coronal (x, z), sagittal (y, z); show the second axis vertically (up = A
    # or S) and radiological left-right (patient right on the image left); sagittal with the face on the left.
    (h_zoom, v_zoom) = [float(z) for i, z in enumerate(zooms) if i != axis]

    def orient(a: np.ndarray) -> np.ndarray:
        # rows: up = anterior (axial) or superior; columns reversed: +x (patient right) and +y (anterior)
        # point to the image left
        return a.T[::-1, ::-1]

    sl = orient(sl)
    brain = orient(np.take(mask, centre, axis)) if mask is not None else None
    if head is not None and head.any():
        rows, cols = np.nonzero(orient(head))
        pad_r, pad_c = max(1, round(6 / v_zoom)), max(1, round(6 / h_zoom))
        crop = (
            slice(max(rows.min() - pad_r, 0), rows.max() + pad_r + 1),
            slice(max(cols.min() - pad_c, 0), cols.max() + pad_c + 1),
        )
        sl = sl[crop]
        brain = brain[crop] if brain is not None else None
    return sl, brain, v_zoom / h_zoom


def _figure_rows(
    root: Path, subjects: list[str], participants: dict[str, dict[str, str]], sequences: Sequence[str]
) -> list[tuple[str, str, str | None, str | None]]:
    """(protocol, subject, clinical session, research session) for the first patient of each protocol; a
    research-only row for the first subject when the cohort has no clinical session."""
    rows: dict[str, tuple[str, str, str | None, str | None]] = {}
    first_research: tuple[str, str, str | None, str | None] | None = None
    for subject in subjects:
        from_sessions = _session_protocols(root, subject)
        clinical = research = None
        for session in _sessions(root, subject):
            image = bids(root, subject=subject, session=session, datatype="anat", suffix=sequences[0])
            protocol = _protocol(
                session,
                from_sessions,
                _sidecar(image) if Path(image).exists() else {},
                participants.get(subject, {}),
            )
            if protocol == _RESEARCH:
                research = research or session
            else:
                clinical = clinical or (protocol, session)
        if clinical and clinical[0] not in rows:
            rows[clinical[0]] = (clinical[0], subject, clinical[1], research)
        if research and first_research is None:
            first_research = (_RESEARCH, subject, None, research)
    ordered = [rows[k] for k in sorted(rows)]
    if not ordered and first_research is not None:
        ordered = [first_research]
    return ordered


def cohort_figure(
    bids_root: str | os.PathLike,
    out_png: str | os.PathLike,
    subjects: Iterable[str] | None = None,
    gt_root: str | os.PathLike | None = None,
    sequences: Sequence[str] = ("T1w", "T2w", "FLAIR"),
    dpi: int = 110,
) -> Path:
    """Overview PNG: one row per clinical protocol present (its first patient), columns clinical T1w, T2w,
    FLAIR then research T1w, T2w, FLAIR of the same patient.

    Clinical images are shown in their native acquisition plane (the slice through the brain centre along
    the third voxel axis, after reorienting to the closest canonical orientation: no interpolation, in-plane
    pixels and angulation as acquired). Each research image (3D, isotropic) is shown in the plane of its
    clinical counterpart so the two can be compared; its own plane is given in the title. Radiological
    convention (patient right on the image left; sagittal: face left); window 1st-99.5th percentile of the
    brain (ground-truth intracranial mask) in the shown slice, so bright scalp fat saturates.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root = Path(bids_root)
    gt = Path(gt_root) if gt_root is not None else _default_gt(root)
    participants = _participants(root)
    rows = _figure_rows(root, _subjects(root, subjects), participants, sequences)
    if not rows:
        raise ValueError(f"{bids_root}: no session with images {', '.join(sequences)} to show")
    ncol = 2 * len(sequences)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(2.35 * ncol, 2.75 * len(rows)), squeeze=False, facecolor="white")
    for r, (protocol, subject, clinical, research) in enumerate(rows):
        planes: dict[str, str] = {}
        scanner = participants.get(subject, {}).get("scanner", "")
        for c, (session, sequence) in enumerate(
            [(clinical, s) for s in sequences] + [(research, s) for s in sequences]
        ):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_facecolor("black")
            for spine in ax.spines.values():
                spine.set_visible(False)
            image = bids(root, subject=subject, session=session, datatype="anat", suffix=sequence) if session else None
            if image is None or not Path(image).exists():
                ax.set_title(f"{sequence}: " + ("not acquired" if session else "no clinical session"), fontsize=8)
                continue
            nii = nib.load(image)
            side = _sidecar(image)
            native = _orientation(nii.affine)
            plane = planes.get(sequence, native)
            if session == clinical:
                planes[sequence] = native
            if session == clinical or clinical is None:
                scanner = _scanner(side, participants.get(subject, {})) or scanner
            dseg, brain = _gt_paths(gt, subject, session, sequence)
            sl, in_brain, aspect = _display_slice(image, brain, dseg, plane)
            shown = sl[in_brain] if in_brain is not None and in_brain.sum() > 50 else sl
            lo, hi = np.percentile(shown, [1, 99.5])
            ax.imshow(sl, cmap="gray", vmin=lo, vmax=max(hi, lo + 1e-6), aspect=aspect, interpolation="none")
            label = protocol if session == clinical else _RESEARCH
            mode = side.get("MRAcquisitionType", "")
            where = native if plane == native else f"{native[:3]}, shown {plane[:3]}"
            field = side.get("MagneticFieldStrength")
            field_text = f"{float(field):g}T " if field is not None else ""
            ax.set_title(
                f"{label} {sequence} ({field_text}{mode})\n{_voxel_string(nii.header.get_zooms())} mm, {where}",
                fontsize=8,
            )
            if plane != "sagittal":
                ax.text(0.02, 0.5, "R", color="yellow", fontsize=7, transform=ax.transAxes, va="center")
        axes[r, 0].set_ylabel(f"{protocol}  sub-{subject}\n{scanner}", fontsize=9)
    fig.tight_layout()
    out = atomic_savefig(fig, out_png, dpi=dpi)
    plt.close(fig)
    return out


# ----------------------------------------------------------------------------------------------------
# all together
# ----------------------------------------------------------------------------------------------------
def write_cohort_qc(
    bids_root: str | os.PathLike,
    out_png: str | os.PathLike,
    out_tsv: str | os.PathLike,
    out_summary_tsv: str | os.PathLike,
    gt_root: str | os.PathLike | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Quality table, per-protocol summary (TSV, floats to 4 significant digits) and overview figure."""
    table = cohort_quality_table(bids_root, gt_root)
    summary = summarise_quality(table)
    for df, path in ((table, out_tsv), (summary, out_summary_tsv)):
        atomic_write_tsv(df, path, float_format="%.4g", na_rep="n/a")
    cohort_figure(bids_root, out_png, gt_root=gt_root)
    return table, summary
