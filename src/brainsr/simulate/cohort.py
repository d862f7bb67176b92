"""Synthetic paired cohort: per-subject parameters, session acquisition and the BIDS dataset on disk.

Each subject is generated from its own seed (cohort seed + subject label), so adding subjects never changes
existing ones. Patients get a 1.5 T clinical session (one of the protocols in ``resources/protocols.yaml``) and a
3 T research session some weeks later; controls get repeated research sessions (paper Fig. 13).
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import yaml

import brainsr
from brainsr import GT_NAME, TEMPLATE_SPACE
from brainsr.base.memory import reuse_freed_memory
from brainsr.bids import SEQUENCES
from brainsr.io import atomic_save_nifti, atomic_write_text
from brainsr.paths import bids
from brainsr.simulate.acquire import Geometry, acquire, geometry, rigid
from brainsr.simulate.anatomy import BRAIN_CENTRE, Anatomy, Deformation, build_anatomy, make_deformation
from brainsr.simulate.mr import DESCRIPTIONS, INTRACRANIAL, LABELS, signal_table
from brainsr.simulate.warp import HeadWarp, single_blas_thread


def load_protocols(path: str | os.PathLike) -> dict:
    """Read the protocol file; checks that each protocol defines the three sequences."""
    with open(path) as fh:
        prot = yaml.safe_load(fh)
    for name, p in [("research", prot.get("research")), *prot.get("clinical", {}).items()]:
        if not p or "sequences" not in p:
            raise ValueError(f"{path}: protocol {name!r} has no 'sequences'")
        missing = [s for s in SEQUENCES if s not in p["sequences"]]
        if missing:
            raise ValueError(f"{path}: protocol {name!r} lacks sequence(s) {', '.join(missing)}")
    return prot


def weighted_schedule(n: int, weights: dict[str, float]) -> list[str]:
    """Deterministic smooth weighted round-robin: the first n items follow the weights as closely as possible,
    and item i never depends on n (appending subjects never reassigns earlier ones)."""
    names = sorted(weights)
    w = np.array([float(weights[k]) for k in names])
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be >= 0 with a positive sum, got {weights}")
    current = np.zeros(len(names))
    out = []
    for _ in range(n):
        current += w
        i = int(np.argmax(current))
        current[i] -= w.sum()
        out.append(names[i])
    return out


def split_schedule(sim: dict) -> dict[str, str]:
    """{patient: train | validation | test} by ``split_counts`` (:func:`weighted_schedule`: prefix-stable)."""
    patients, _ = subject_labels(sim)
    counts = {k: v for k, v in sim["split_counts"].items() if v > 0}
    return dict(zip(patients, weighted_schedule(len(patients), counts), strict=True))


def subject_labels(sim: dict) -> tuple[list[str], list[str]]:
    """Patient (P001, ...) and control (C001, ...) subject labels of the synthetic cohort."""
    return (
        [f"P{i + 1:03d}" for i in range(int(sim["n_patients"]))],
        [f"C{i + 1:03d}" for i in range(int(sim["n_controls"]))],
    )


def subject_rng(seed: int, label: str) -> np.random.Generator:
    """Random generator of one subject: depends only on the cohort seed and the subject label."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(label.encode())]))


def protocol_weights(sim: dict, protocols: dict) -> dict[str, float]:
    """Relative protocol frequencies: the config override or the protocol file's weights."""
    if sim.get("protocol_weights"):
        unknown = set(sim["protocol_weights"]) - set(protocols["clinical"])
        if unknown:
            raise ValueError(
                f"simulate.protocol_weights names unknown protocol(s) {sorted(unknown)}; "
                f"known: {sorted(protocols['clinical'])}"
            )
        return {k: float(v) for k, v in sim["protocol_weights"].items()}
    return {k: float(p.get("weight", 1)) for k, p in protocols["clinical"].items()}


def cohort_table(sim: dict, protocols: dict) -> pd.DataFrame:
    """participants.tsv content: demographics, protocol, scanner, split, group, session gap.

    The split follows ``split_counts`` unless ``sim["splits"]`` ({label: split}, the frozen split) names it."""
    patients, controls = subject_labels(sim)
    prot = weighted_schedule(len(patients), protocol_weights(sim, protocols))
    split = split_schedule(sim) | (sim.get("splits") or {})  # the workflow's frozen split, when given
    rows = []
    for i, label in enumerate(patients + controls):
        p = subject_params(sim, label, prot[i] if i < len(patients) else None)
        scanner = "n/a"
        if p["protocol"]:
            c = protocols["clinical"][p["protocol"]]
            scanner = f"{c['manufacturer']} {c['model']} {c['field_strength']}T"
        rows.append(
            {
                "participant_id": f"sub-{label}",
                "age": p["age"],
                "sex": p["sex"],
                "group": p["group"],
                "protocol": p["protocol"] or "n/a",
                "scanner": scanner,
                "split": split.get(label, "n/a"),
                "days_between_sessions": p["days"][-1] if p["group"] == "patient" else "n/a",
            }
        )
    return pd.DataFrame(rows)


def subject_params(sim: dict, label: str, protocol: str | None) -> dict:
    """Sample a subject's anatomy, lesion load, head geometry and session schedule from its own seed."""
    rng = subject_rng(sim["seed"], label)
    group = "control" if label.startswith("C") else "patient"
    age = float(np.clip(rng.normal(67 if group == "patient" else 66, 10), 40, 90))
    sex = "F" if rng.uniform() < 0.31 else "M"  # paper: 19/61 patients and 59/190 controls women
    atrophy = float(np.clip((age - 45) / 45 + rng.normal(0, 0.15), 0, 1))
    # MNI152 heads are large (brain mask 1.88 l): scale to intracranial volumes of about 1.4 l (F) / 1.65 l (M)
    scale = (0.88 if sex == "F" else 0.93) * rng.normal(1.0, 0.03) * rng.normal(1.0, 0.02, 3)
    lo, hi = sim.get("days_between_sessions", [8, 95])
    if group == "patient":
        days = [0, int(rng.integers(lo, hi + 1))]
    else:
        days = [round(30.4 * m) for m in sim["control_months"]]
    return {
        "label": label,
        "group": group,
        "protocol": protocol,
        "age": round(age, 1),
        "sex": sex,
        "atrophy": round(atrophy, 3),
        "scale": [round(float(s), 4) for s in scale],
        "deformation_rms_mm": round(float(rng.uniform(1.5, 3.5)), 2),
        "pv_wmh_ml": round(float(rng.lognormal(np.log(1.5 + 12 * atrophy), 0.7)), 2),
        "n_deep_lesions": int(rng.poisson(2 + 10 * atrophy)),
        "lesion_growth_per_90_days": round(float(rng.uniform(0.02, 0.12)), 3),
        "stroke": bool(group == "patient" and rng.uniform() < float(sim.get("stroke_probability", 0.2))),
        "stroke_side": int(rng.choice([-1, 1])),
        "stroke_radius_mm": round(float(rng.uniform(8, 15)), 1),
        "csf_shell_mm": round(float(rng.uniform(1.5, 3.0)), 2),
        "bone_mm": round(float(rng.uniform(1.2, 2.0)), 2),
        "diploe_mm": round(float(rng.uniform(2.0, 4.0)), 2),
        "galea_mm": round(float(rng.uniform(1.0, 2.0)), 2),
        "subcut_mm": round(float(rng.uniform(2.5, 6.0)), 2),
        "skin_mm": round(float(rng.uniform(1.0, 2.0)), 2),
        "days": days,
        "anatomy_seed": int(rng.integers(2**31)),
    }


@dataclass
class SessionPlan:
    """One session to acquire: its label, protocol description, lesion growth and head pose."""

    session: str
    protocol_name: str
    protocol: dict
    growth: float
    days: int


def session_plans(sim: dict, params: dict, protocols: dict, sessions: dict) -> list[SessionPlan]:
    """Sessions of a subject: clinical + research for patients, research at each month for controls."""
    g = params["lesion_growth_per_90_days"]
    research = protocols["research"]
    if sim.get("research_voxel_mm"):
        vox = float(sim["research_voxel_mm"])
        research = {
            **research,
            "sequences": {
                k: {**q, "acquired_mm": vox, "recon_mm": vox, "thickness_mm": vox}
                for k, q in research["sequences"].items()
            },
        }
    if params["group"] == "patient":
        gap = params["days"][1]
        return [
            SessionPlan(sessions["clinical"], params["protocol"], protocols["clinical"][params["protocol"]], 0.0, 0),
            SessionPlan(sessions["research"], "research", research, g * gap / 90, gap),
        ]
    prefix = sessions.get("longitudinal_prefix", "month")
    return [
        SessionPlan(f"{prefix}{m:02d}", "research", research, g * d / 90 / 4, d)
        for m, d in zip(sim["control_months"], params["days"], strict=True)
    ]


def _signal_map(anat: Anatomy, fractions: dict[str, np.ndarray], field: float, seq: dict) -> np.ndarray:
    """Noiseless signal on the template grid: fraction-weighted tissue signals inside the ICV, head labels outside."""
    table = signal_table(field, seq)
    box = anat.icv_box  # the intracranial sum is needed only there
    s = np.zeros(anat.icv[box].shape, np.float32)
    for name, f in fractions.items():
        s += f[box] * np.float32(table[name])
    head_lut = np.zeros(max(LABELS.values()) + 1, np.float32)
    for name, index in LABELS.items():
        if name != "gliosis":
            head_lut[index] = table[name]
    out = head_lut[anat.head]
    out[box] = np.where(anat.icv[box], s, out[box])
    return out


def _pose(rng: np.random.Generator, rot_sd: float, trans_sd: float) -> np.ndarray:
    return rigid(
        np.clip(rng.normal(0, rot_sd, 3), -3 * rot_sd, 3 * rot_sd),
        np.clip(rng.normal(0, trans_sd, 3), -3 * trans_sd, 3 * trans_sd),
        BRAIN_CENTRE,
    )


def _nifti(data: np.ndarray, affine: np.ndarray, dtype: type) -> nib.Nifti1Image:
    img = nib.Nifti1Image(data.astype(dtype), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    return img


@dataclass
class _SubjectRun:
    """What the sessions of one subject being simulated share: where to write, its anatomy and head warp."""

    label: str
    bids_root: Path
    gt_root: Path
    params: dict
    anat: Anatomy
    warp: HeadWarp
    icv_u8: np.ndarray
    min_vox: float
    fine: float

    def gt(self, session: str, **entities: str) -> Path:
        """Path of a ground-truth file of one session (``anat`` datatype)."""
        return Path(bids(self.gt_root, subject=self.label, session=session, datatype="anat", **entities))


def _write_deformation(deform: Deformation, gt_root: Path, label: str) -> list[Path]:
    """Write the ground-truth deformation: coarse coordinate fields (trilinear interpolation defines them)."""
    written = []
    for data, aff, frm, to in (
        (deform.forward, deform.forward_affine, "subject", TEMPLATE_SPACE),
        (deform.inverse, deform.inverse_affine, TEMPLATE_SPACE, "subject"),
    ):
        p = Path(bids(gt_root, subject=label, suffix="xfm", from_=frm, to=to, mode="image"))
        img = _nifti(data[:, :, :, None, :], aff, np.float32)
        img.header.set_intent("vector", (), name="coordinates_mm")
        atomic_save_nifti(img, p)
        written.append(p)
    return written


def _acquire_image(
    run: _SubjectRun,
    seq: dict,
    field: float,
    seq_pose: np.ndarray,
    fractions: dict[str, np.ndarray],
    srng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, Geometry]:
    """Acquire one sequence of a session: (int16-range image data, its affine, its geometry)."""
    smap = _signal_map(run.anat, fractions, field, seq)

    def sampler(pts: np.ndarray) -> np.ndarray:
        return run.warp.sample([smap], seq_pose, pts, order=1)[0]

    geo = geometry(seq, run.min_vox)
    table = signal_table(field, seq)
    ref = max(table[k] for k in ("csf", "gm", "wm"))
    noise = table["wm"] / float(seq["snr"])
    fov_centre = seq_pose[:3, :3] @ BRAIN_CENTRE + seq_pose[:3, 3] + srng.normal(0, 3, 3)
    img, aff = acquire(sampler, geo, fov_centre, run.fine, noise, float(seq.get("bias", 0)), srng)
    gain = float(srng.uniform(0.8, 1.25)) * 1000.0 / ref
    data = np.clip(np.round(img * gain), 0, 32767)
    return data, aff, geo


def _sidecar(plan: SessionPlan, seq_name: str, seq: dict, geo: Geometry, field: float) -> dict:
    """The JSON sidecar of one sequence image."""
    side = {
        "Manufacturer": plan.protocol["manufacturer"],
        "ManufacturersModelName": plan.protocol["model"],
        "MagneticFieldStrength": field,
        "ProtocolName": plan.protocol_name,
        "SeriesDescription": f"{seq['mode']} {seq['orientation']} {seq_name}",
        "MRAcquisitionType": seq["mode"],
        "PulseSequenceType": {
            "se": "spin echo",
            "ir": "inversion recovery",
            "gre": "spoiled gradient echo",
        }[seq["type"]],
        "RepetitionTime": float(seq["TR"]) / 1000,
        "EchoTime": float(seq["TE"]) / 1000,
        "SliceThickness": geo.thickness,
        "SpacingBetweenSlices": geo.spacing,
        "AcquisitionMatrixPE": int(geo.acquired_matrix[1]),
        "ReconMatrixPE": int(geo.recon_matrix[1]),
        "SliceOrientation": seq["orientation"],
        "AngulationDeg": float(seq.get("angulation_deg", 0)),
        "SimulatedSNR_WM": float(seq["snr"]),
        "GeneratedBy": f"brainsr {brainsr.__version__} simulate",
    }
    if "TI" in seq:
        side["InversionTime"] = float(seq["TI"]) / 1000
    if "flip_deg" in seq:
        side["FlipAngle"] = float(seq["flip_deg"])
    return side


def _write_image_truth(
    run: _SubjectRun,
    session: str,
    seq_name: str,
    labels: np.ndarray,
    seq_pose: np.ndarray,
    shape: tuple[int, ...],
    aff: np.ndarray,
) -> list[Path]:
    """Write the ground truth on one image's grid: labels, ICV mask, WMH and stroke masks; pose."""
    written = []
    ijk = np.indices(shape, dtype=np.float32).reshape(3, -1)
    with single_blas_thread():
        pts = (aff[:3, :3] @ ijk).T + aff[:3, 3]
    lab, icv = (a.reshape(shape) for a in run.warp.sample([labels, run.icv_u8], seq_pose, pts, order=0))
    for suffix, arr, ent in (
        ("dseg", lab, {"desc": "tissue"}),
        ("mask", icv, {"desc": "brain"}),
        ("mask", lab == LABELS["wmh"], {"label": "WMH"}),
        ("mask", lab == LABELS["stroke"], {"label": "stroke"}),
    ):
        p = run.gt(session, space=seq_name, suffix=suffix, **ent)
        atomic_save_nifti(_nifti(arr, aff, np.uint8), p)
        written.append(p)
    p = run.gt(session, suffix="xfm", extension=".txt", from_="subject", to=seq_name, mode="image")
    atomic_write_text(
        "# subject-frame mm -> scanner mm of this image (RAS, 4x4)\n"
        + "\n".join(" ".join(f"{v:.8f}" for v in row) for row in seq_pose)
        + "\n",
        p,
    )
    written.append(p)
    return written


def _simulate_sequence(
    run: _SubjectRun,
    plan: SessionPlan,
    seq_name: str,
    field: float,
    pose: np.ndarray,
    fractions: dict[str, np.ndarray],
    labels: np.ndarray,
    srng: np.random.Generator,
) -> list[Path]:
    """Write one sequence image of a session, its sidecar and its ground truth; returns the written paths."""
    seq = plan.protocol["sequences"][seq_name]
    seq_pose = rigid(srng.normal(0, 0.5, 3), srng.normal(0, 0.5, 3), BRAIN_CENTRE) @ pose
    data, aff, geo = _acquire_image(run, seq, field, seq_pose, fractions, srng)
    p = Path(bids(run.bids_root, subject=run.label, session=plan.session, datatype="anat", suffix=seq_name))
    atomic_save_nifti(_nifti(data, aff, np.int16), p)
    pj = p.with_name(p.name.replace(".nii.gz", ".json"))
    atomic_write_text(json.dumps(_sidecar(plan, seq_name, seq, geo, field), indent=2) + "\n", pj)
    return [p, pj, *_write_image_truth(run, plan.session, seq_name, labels, seq_pose, data.shape, aff)]


def _simulate_session(run: _SubjectRun, seed: int, plan: SessionPlan) -> tuple[dict, list[Path]]:
    """Acquire every sequence of one session and write its ground truth: (sessions.tsv row, written paths)."""
    tm = run.anat.tm
    t_sl = tuple(slice(o, o + n) for o, n in zip(tm.offset, tm.template_shape, strict=True))
    srng = subject_rng(seed, f"{run.label}-{plan.session}")
    is_research = plan.protocol_name == "research"
    pose = _pose(srng, 2.0 if is_research else 4.0, 3.0 if is_research else 5.0)
    fractions = run.anat.session_fractions(plan.growth)
    labels = run.anat.labels(fractions)
    field = float(plan.protocol["field_strength"])
    row = {
        "session_id": f"ses-{plan.session}",
        "days_from_first_session": plan.days,
        "protocol": plan.protocol_name,
    }
    written = []
    wmh_ml = float(fractions["wmh"].sum() * tm.resolution**3 / 1000)
    # template-space truth: the anatomy before the subject's deformation
    p = run.gt(plan.session, space=TEMPLATE_SPACE, desc="tissue", suffix="dseg")
    atomic_save_nifti(_nifti(labels[t_sl], tm.template_affine, np.uint8), p)
    written.append(p)
    # volumes in the subject's head: template-space volume x head scale (the diffeomorphism is volume-neutral
    # on average); "template" values are the same before scaling
    scale = run.params["scale"]
    vox_ml = tm.resolution**3 / 1000 * float(np.prod(scale))
    truth = {
        "lesion_growth": plan.growth,
        "days_from_first_session": plan.days,
        "wmh_ml": round(wmh_ml * float(np.prod(scale)), 3),
        "tissue_volumes_ml": {n: round(float(f.sum() * vox_ml), 3) for n, f in fractions.items()},
        "icv_ml": round(float(run.anat.icv.sum() * vox_ml), 2),
        "head_scale": scale,
    }
    for seq_name in SEQUENCES:
        written += _simulate_sequence(run, plan, seq_name, field, pose, fractions, labels, srng)
    p = run.gt(plan.session, desc="truth", suffix="info", extension=".json")
    atomic_write_text(json.dumps(truth, indent=2) + "\n", p)
    written.append(p)
    return row, written


@reuse_freed_memory()
def simulate_subject(
    sim: dict, label: str, protocol: str | None, bids_root: str | os.PathLike, sessions: dict, protocols: dict
) -> list[Path]:
    """Generate every image, sidecar and ground-truth file of one subject; returns the written paths."""
    bids_root = Path(bids_root)
    gt_root = bids_root / "derivatives" / GT_NAME
    params = subject_params(sim, label, protocol)
    rng = np.random.default_rng(params["anatomy_seed"])
    res = int(sim.get("template_resolution_mm", 1))
    anat = build_anatomy(params, rng, res)
    deform = make_deformation(anat.tm, np.asarray(params["scale"]), params["deformation_rms_mm"], rng)
    run = _SubjectRun(
        label=label,
        bids_root=bids_root,
        gt_root=gt_root,
        params=params,
        anat=anat,
        warp=HeadWarp(anat, deform),
        icv_u8=anat.icv.astype(np.uint8),
        min_vox=float(sim.get("min_voxel_mm", 0)),
        fine=float(anat.tm.resolution),
    )
    written = _write_deformation(deform, gt_root, label)
    session_rows = []
    for plan in session_plans(sim, params, protocols, sessions):
        row, files = _simulate_session(run, sim["seed"], plan)
        session_rows.append(row)
        written += files
    p = Path(bids(bids_root, subject=label, suffix="sessions", extension=".tsv"))
    atomic_write_text(pd.DataFrame(session_rows).to_csv(sep="\t", index=False), p)
    written.append(p)
    p = Path(bids(gt_root, subject=label, desc="simulation", suffix="params", extension=".json"))
    atomic_write_text(json.dumps(params, indent=2) + "\n", p)
    written.append(p)
    return written


def write_dataset_files(sim: dict, bids_root: str | os.PathLike, protocols: dict) -> list[Path]:
    """Dataset-level files: dataset_description.json, participants.tsv/.json, README, ground-truth lookup."""
    root = Path(bids_root)
    gt = root / "derivatives" / GT_NAME
    generated = [
        {
            "Name": "brainsr",
            "Version": brainsr.__version__,
            "Description": "brainsr simulate: synthetic paired clinical/research cohort",
        }
    ]
    files = {
        root / "dataset_description.json": json.dumps(
            {
                "Name": "brainsr synthetic paired clinical/research cohort",
                "BIDSVersion": "1.9.0",
                "DatasetType": "raw",
                "License": "CC0",
                "GeneratedBy": generated,
                "HowToAcknowledge": "Built from the MNI152 2009 maps distributed with nilearn.",
            },
            indent=2,
        )
        + "\n",
        gt / "dataset_description.json": json.dumps(
            {
                "Name": "brainsr synthetic cohort ground truth",
                "BIDSVersion": "1.9.0",
                "DatasetType": "derivative",
                "GeneratedBy": generated,
            },
            indent=2,
        )
        + "\n",
        root / "participants.tsv": cohort_table(sim, protocols).to_csv(sep="\t", index=False),
        root / "participants.json": json.dumps(
            {
                "age": {"Description": "age at the first session", "Units": "year"},
                "sex": {"Description": "sex", "Levels": {"F": "female", "M": "male"}},
                "group": {"Description": "patient (paired clinical + research) or control (repeated research)"},
                "protocol": {"Description": "clinical acquisition protocol (resources/protocols.yaml)"},
                "scanner": {"Description": "clinical scanner"},
                "split": {"Description": "train / validation / test (by subject)"},
                "days_between_sessions": {"Description": "days from the clinical to the research session"},
            },
            indent=2,
        )
        + "\n",
        root / "README": (
            "Synthetic paired clinical (1.5 T, five protocols) and research (3 T, 1 mm) brain MRI "
            "cohort generated by `brainsr simulate`. Ground truth under derivatives/groundtruth.\n"
        ),
        gt / "desc-tissue_dseg.tsv": pd.DataFrame(
            [
                {"index": i, "name": n, "intracranial": n in INTRACRANIAL, "description": DESCRIPTIONS[n]}
                for n, i in LABELS.items()
                if n != "gliosis"
            ]
        ).to_csv(sep="\t", index=False),
    }
    for path, text in files.items():
        atomic_write_text(text, path)
    return list(files)
