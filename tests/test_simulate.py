"""Synthetic cohort: MR physics, acquisition geometry, ground-truth transforms, determinism, BIDS validity."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import PROTOCOLS, SESSIONS, make_cohort, tiny_sim
from scipy import ndimage as ndi

from brainsr.bids import discover
from brainsr.paths import bids, parse_bids_name
from brainsr.simulate.acquire import ORIENTATION_AXES, geometry, rotation, slice_profile
from brainsr.simulate.anatomy import build_anatomy, pial_voxels
from brainsr.simulate.cohort import (
    GT_NAME,
    cohort_table,
    session_plans,
    simulate_subject,
    subject_params,
    weighted_schedule,
)
from brainsr.simulate.mr import LABELS, signal_table

SEQS = ("T1w", "T2w", "FLAIR")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """One patient (protocol P2: sagittal T1w, oblique axial T2w/FLAIR) and the dataset files, at 2 mm."""
    return make_cohort(tmp_path_factory.mktemp("cohort"), "P2")


def gt_path(root: Path, session: str, **entities: str) -> str:
    """Ground-truth file of subject P001 in a generated cohort."""
    return bids(root / "derivatives" / GT_NAME, subject="P001", session=session, datatype="anat", **entities)


def _load(path: str) -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(path)
    return np.asarray(img.dataobj, np.float32), img.affine


def _means(root: Path, session: str, seq: str) -> dict[str, float]:
    img, _ = _load(bids(root, subject="P001", session=session, datatype="anat", suffix=seq))
    lab, _ = _load(gt_path(root, session, space=seq, desc="tissue", suffix="dseg"))
    # medians over labels eroded in-plane, away from partial volume
    st = np.zeros((3, 3, 1), bool)
    st[:, :, 0] = True
    out = {}
    for name in ("csf", "gm", "wm", "wmh"):
        m = ndi.binary_erosion(lab == LABELS[name], st) if name != "wmh" else lab == LABELS[name]
        out[name] = float(np.median(img[m])) if m.sum() > 20 else float("nan")
    return out


# ---------------------------------------------------------------------------------------------- physics
@pytest.mark.parametrize("name", ["research", *PROTOCOLS["clinical"]])
def test_signal_equations_give_textbook_contrast(name):
    prot = PROTOCOLS["research"] if name == "research" else PROTOCOLS["clinical"][name]
    t = {s: signal_table(prot["field_strength"], prot["sequences"][s]) for s in SEQS}
    assert t["T1w"]["wm"] > t["T1w"]["gm"] > t["T1w"]["csf"]
    assert t["T2w"]["csf"] > t["T2w"]["gm"] > t["T2w"]["wm"]
    assert t["FLAIR"]["csf"] < 0.3 * t["FLAIR"]["wm"]  # CSF nulled
    assert t["FLAIR"]["wmh"] > 1.3 * t["FLAIR"]["wm"]  # lesions bright on FLAIR
    assert t["T2w"]["wmh"] > t["T2w"]["wm"] and t["T1w"]["wmh"] < t["T1w"]["wm"]  # bright on T2w, dark on T1w
    assert t["T2w"]["sinus"] < t["T2w"]["wm"]  # venous sinuses hypointense on T2w (flow void)
    assert t["FLAIR"]["pial"] > t["FLAIR"]["csf"] and t["T1w"]["pial"] < t["T1w"]["gm"]


@pytest.mark.parametrize("session", ["research", "clinical"])
def test_simulated_images_have_expected_tissue_contrast(cohort, session):
    t1, t2, fl = (_means(cohort, session, s) for s in SEQS)
    assert t1["wm"] > t1["gm"] > t1["csf"]
    assert t2["csf"] > t2["gm"] > t2["wm"]
    assert fl["csf"] < fl["gm"] and fl["csf"] < fl["wm"]
    if not np.isnan(fl["wmh"]):
        assert fl["wmh"] > fl["wm"]


def test_slice_profile_is_a_unit_rectangle_with_soft_edges():
    z = np.linspace(-10, 10, 2001)
    p = slice_profile(z, 5.0)
    assert p.max() == pytest.approx(1.0, abs=1e-6)
    assert np.trapezoid(p, z) == pytest.approx(5.0, rel=1e-3)  # integral = thickness
    assert slice_profile(np.array([2.5]), 5.0)[0] == pytest.approx(0.5, abs=1e-6)  # half height at the edge


# --------------------------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("seq", SEQS)
def test_clinical_geometry_matches_protocol(cohort, seq):
    spec = PROTOCOLS["clinical"]["P2"]["sequences"][seq]
    img = nib.load(bids(cohort, subject="P001", session="clinical", datatype="anat", suffix=seq))
    geo = geometry(spec, min_voxel_mm=2.0)
    zooms = np.asarray(img.header.get_zooms()[:3])
    np.testing.assert_allclose(zooms, [geo.recon, geo.recon, geo.thickness + geo.gap], atol=1e-4)
    normal = img.affine[:3, 2] / np.linalg.norm(img.affine[:3, 2])
    expected = rotation(np.array([spec["angulation_deg"], 0, 0])) @ ORIENTATION_AXES[spec["orientation"]][:, 2]
    assert abs(normal @ expected) > 0.9999
    # the slice normal is closest to the axis the protocol names (axial: z, coronal: y, sagittal: x)
    assert int(np.argmax(np.abs(normal))) == {"sagittal": 0, "coronal": 1, "axial": 2}[spec["orientation"]]
    side = json.loads(Path(str(img.get_filename()).replace(".nii.gz", ".json")).read_text())
    assert side["MagneticFieldStrength"] == 1.5
    assert side["SliceThickness"] == pytest.approx(geo.thickness)


def _pose(root: Path, session: str, seq: str) -> np.ndarray:
    p = gt_path(root, session, suffix="xfm", extension=".txt", from_="subject", to=seq, mode="image")
    return np.loadtxt(p)


def _clinical_on_research(root: Path, seq: str, shift_mm: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    res_img, res_aff = _load(bids(root, subject="P001", session="research", datatype="anat", suffix=seq))
    cli_img, cli_aff = _load(bids(root, subject="P001", session="clinical", datatype="anat", suffix=seq))
    ijk = np.indices(res_img.shape, dtype=np.float64).reshape(3, -1)
    world = res_aff[:3, :3] @ ijk + res_aff[:3, 3:4]
    to_clin = _pose(root, "clinical", seq) @ np.linalg.inv(_pose(root, "research", seq))
    world_c = to_clin[:3, :3] @ world + to_clin[:3, 3:4] + np.array([[shift_mm], [0], [0]])
    vox = np.linalg.inv(cli_aff)[:3, :3] @ world_c + np.linalg.inv(cli_aff)[:3, 3:4]
    return res_img, ndi.map_coordinates(cli_img, vox, order=1).reshape(res_img.shape)


@pytest.mark.parametrize("seq", SEQS)
def test_true_transform_maps_clinical_onto_research(cohort, seq):
    mask, _ = _load(gt_path(cohort, "research", space=seq, desc="brain", suffix="mask"))
    research, clinical = _clinical_on_research(cohort, seq)
    r_true = np.corrcoef(research[mask > 0], clinical[mask > 0])[0, 1]
    research, clinical = _clinical_on_research(cohort, seq, shift_mm=8.0)
    r_wrong = np.corrcoef(research[mask > 0], clinical[mask > 0])[0, 1]
    assert r_true > 0.75
    assert r_true > r_wrong + 0.1


def test_ground_truth_brain_mask_excludes_the_skull(cohort):
    for session in ("research", "clinical"):
        mask, _ = _load(gt_path(cohort, session, space="T1w", desc="brain", suffix="mask"))
        lab, _ = _load(gt_path(cohort, session, space="T1w", desc="tissue", suffix="dseg"))
        head = (lab >= LABELS["bone"]) & (mask == 0)
        assert head.sum() > 0.2 * (mask > 0).sum()  # real extracranial tissue for brain extraction to remove
        assert not np.any((mask > 0) & (lab == LABELS["bone"]))


# ---------------------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_arrays(cohort, tmp_path):
    sim = tiny_sim(n_patients=1, n_controls=0, split_counts={"train": 1})
    simulate_subject(sim, "P001", "P2", tmp_path, SESSIONS, PROTOCOLS)
    for f in sorted(cohort.glob("sub-P001/ses-*/anat/*.nii.gz")):
        a = np.asarray(nib.load(f).dataobj)
        b = np.asarray(nib.load(tmp_path / f.relative_to(cohort)).dataobj)
        np.testing.assert_array_equal(a, b)


def test_subject_depends_only_on_its_own_seed():
    small, large = tiny_sim(n_patients=3), tiny_sim(n_patients=30, split_counts={"train": 30})
    assert subject_params(small, "P002", "P2") == subject_params(large, "P002", "P2")
    assert subject_params(small, "P002", "P2") != subject_params(small, "P003", "P2")
    assert subject_params(small, "P002", "P2") != subject_params(tiny_sim(seed=7), "P002", "P2")


def test_protocol_and_split_schedules_follow_the_paper_and_are_prefix_stable():
    weights = {k: v["weight"] for k, v in PROTOCOLS["clinical"].items()}
    sched = weighted_schedule(61, weights)
    assert {k: sched.count(k) for k in weights} == {"P1": 14, "P2": 36, "P3": 6, "P4": 1, "P5": 4}
    assert weighted_schedule(20, weights) == sched[:20]
    split = weighted_schedule(61, {"train": 40, "validation": 11, "test": 10})
    assert (split.count("train"), split.count("validation"), split.count("test")) == (40, 11, 10)


def test_participants_split_follows_the_frozen_split_when_given():
    sim = tiny_sim(n_patients=4)  # split_counts 1/1/1: the schedule puts the 4th patient somewhere
    scheduled = cohort_table(sim, PROTOCOLS).set_index("participant_id")["split"]
    frozen = dict(zip(["P001", "P002", "P003"], scheduled.iloc[:3], strict=True)) | {"P004": "test"}
    table = cohort_table({**sim, "splits": frozen}, PROTOCOLS).set_index("participant_id")["split"]
    assert table.to_dict() == {f"sub-{k}": v for k, v in frozen.items()} | {"sub-C001": "n/a"}


def test_sessions_and_lesion_growth():
    sim = tiny_sim()
    patient = subject_params(sim, "P001", "P1")
    plans = session_plans(sim, patient, PROTOCOLS, SESSIONS)
    assert [p.session for p in plans] == ["clinical", "research"]
    assert 8 <= plans[1].days <= 95 and plans[1].growth > 0 and plans[0].growth == 0
    control = subject_params(sim, "C001", None)
    plans = session_plans(sim, control, PROTOCOLS, SESSIONS)
    assert [p.session for p in plans] == ["month00", "month02"]
    assert all(p.protocol_name == "research" for p in plans)


# ---------------------------------------------------------------------------------------- BIDS validity
def test_output_is_a_valid_bids_dataset(cohort):
    from bids_validator import BIDSValidator

    desc = json.loads((cohort / "dataset_description.json").read_text())
    assert desc["BIDSVersion"] and desc["Name"] and desc["DatasetType"] == "raw"
    gt_desc = json.loads((cohort / "derivatives" / GT_NAME / "dataset_description.json").read_text())
    assert gt_desc["DatasetType"] == "derivative" and gt_desc["GeneratedBy"]
    validator = BIDSValidator()
    raw = [p for p in cohort.rglob("*") if p.is_file() and "derivatives" not in p.parts]
    for p in raw:
        rel = "/" + p.relative_to(cohort).as_posix()
        assert validator.is_bids(rel), f"not a valid BIDS path: {rel}"
    for p in (cohort / "derivatives").rglob("sub-*"):
        if p.is_file():
            parse_bids_name(p)  # raises on malformed derivative names
    participants = (cohort / "participants.tsv").read_text().splitlines()
    assert participants[0].split("\t")[:7] == [
        "participant_id",
        "age",
        "sex",
        "group",
        "protocol",
        "scanner",
        "split",
    ]
    for image in cohort.glob("sub-*/ses-*/anat/*.nii.gz"):
        side = json.loads(image.with_name(image.name.replace(".nii.gz", ".json")).read_text())
        for key in (
            "MagneticFieldStrength",
            "Manufacturer",
            "RepetitionTime",
            "EchoTime",
            "SliceThickness",
            "ProtocolName",
        ):
            assert key in side, f"{image.name} sidecar lacks {key}"
        if image.name.endswith("FLAIR.nii.gz"):
            assert "InversionTime" in side


def test_bids_layer_pairs_the_generated_sessions(cohort):
    inv = discover(cohort)
    assert [p.subject for p in inv.pairs] == ["P001"]
    pair = inv.pairs[0]
    assert pair.protocol == "P2" and pair.split == "train"
    assert set(pair.clinical.images) == set(SEQS) == set(pair.research.images)
    assert not inv.errors


def test_deformation_is_smooth_invertible_and_scales_the_head():
    from brainsr.simulate.anatomy import BRAIN_CENTRE, load_template_maps, make_deformation

    tm = load_template_maps(2)
    scale = np.array([1.08, 1.05, 1.02])
    deform = make_deformation(tm, scale, rms_mm=3.0, rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    pts = BRAIN_CENTRE + rng.uniform(-60, 60, (2000, 3))
    back = deform.to_template(deform.to_subject(pts))
    err = np.linalg.norm(back - pts, axis=1)
    assert np.median(err) < 0.3 and err.max() < 1.5  # numerical inverse consistency (mm)
    # far from the centre, the subject head is larger than the template by the scale factors
    far = BRAIN_CENTRE + np.array([[60.0, 0, 0], [0, 60.0, 0], [0, 0, 60.0]])
    subj = deform.to_subject(far)
    ratio = np.abs((subj - BRAIN_CENTRE)[np.arange(3), np.arange(3)]) / 60.0
    np.testing.assert_allclose(ratio, scale, atol=0.08)


def test_box_counts_and_active_cells_by_hand():
    """Summed-area box counts; a cell is active when its corner box (plus margin) meets the support."""
    from brainsr.simulate.warp import active_cells, box_counts

    support = np.zeros((5, 5, 5), bool)
    support[1, 2, 3] = support[4, 4, 4] = True
    lo = np.array([[0, 0, 0], [1, 2, 3], [2, 0, 0], [-3, -3, -3], [0, 0, 0]])
    hi = np.array([[5, 5, 5], [2, 3, 4], [5, 5, 4], [1, 1, 1], [9, 9, 9]])  # clipped to the grid
    assert box_counts(support, lo, hi).tolist() == [2, 1, 0, 0, 2]
    # a 4x4x4 coarse field of template voxel coordinates 0, 2, 4, 6 per axis: 3x3x3 cells of 2 voxels
    field_vox = np.moveaxis(np.indices((4, 4, 4)), 0, -1) * 2.0
    corner = np.zeros((9, 9, 9), bool)
    corner[6, 6, 6] = True
    cells = active_cells(field_vox, corner, margin=0)
    assert cells.shape == (3, 3, 3) and cells.sum() == 8 and cells[1:, 1:, 1:].all()  # cell (2, 2, 2), dilated
    assert active_cells(field_vox, corner, margin=2).sum() == 27
    assert not active_cells(field_vox, np.zeros((9, 9, 9), bool)).any()


def test_cropped_distance_equals_the_full_transform():
    """Distance transforms cropped to a box holding every feature are exact there and inf outside."""
    from brainsr.simulate.anatomy import _bbox, _distance

    feat = np.zeros((12, 10, 9), bool)
    feat[3, 4, 5] = feat[6, 2, 4] = True
    box = _bbox(feat, 2)
    assert box == (slice(1, 9), slice(0, 7), slice(2, 8))
    full = ndi.distance_transform_edt(~feat)
    d = _distance(feat, box)
    assert np.array_equal(d[box], full[box]) and np.isinf(d[0]).all()
    assert d[3, 4, 7] == 2.0 and d[4, 5, 5] == np.sqrt(2)
    # a box missing a feature falls back to the full transform
    assert np.array_equal(_distance(feat, (slice(0, 5),) * 3), full)


def test_bias_field_on_a_grid_equals_the_pointwise_field():
    """The plane-by-plane bias field equals the (N, 10) monomial evaluation at the same points, oblique axes too."""
    from brainsr.simulate.acquire import make_bias_field

    bias = make_bias_field(0.4, np.random.default_rng(3))
    axes = rotation(np.array([17.0, -8.0, 25.0])) @ ORIENTATION_AXES["coronal"]
    u, v, z = np.linspace(-300, 300, 13), np.linspace(-90, 110, 11), np.linspace(-70, 80, 7)
    grid = np.stack(np.meshgrid(z, u, v, indexing="ij"), -1).reshape(-1, 3)[:, [1, 2, 0]]
    expected = bias(grid @ axes.T)
    got = bias.on_grid(axes, u, v, z)
    assert got.shape == (len(z), len(u) * len(v)) and got.dtype == np.float32
    np.testing.assert_allclose(got.reshape(-1), expected, rtol=1e-6)
    clipped = np.isin(expected, np.exp(np.float32([-0.6, 0.6]), dtype=np.float32))  # |f| = 1.5 far out
    assert 0 < clipped.sum() < clipped.size / 2


def test_edt_and_components_equal_the_ndimage_results():
    """The integer-summed distance transform equals ndimage's; small components are dropped, big ones kept."""
    from brainsr.simulate.anatomy import _edt, _largest_components

    rng = np.random.default_rng(4)
    background = rng.random((17, 12, 9)) > 0.02
    assert np.array_equal(_edt(background), ndi.distance_transform_edt(background))
    assert np.array_equal(_edt(np.ones((4, 5, 6), bool)), ndi.distance_transform_edt(np.ones((4, 5, 6), bool)))
    mask = np.zeros((10, 10, 10), bool)
    mask[1:4, 1:4, 1:4] = True  # 27 voxels
    mask[7, 7, 5:8] = True  # 3 voxels
    mask[6:9, 1, 1] = mask[8, 2, 1] = True  # 4 voxels
    expected = mask.copy()
    expected[7, 7, 5:8] = False
    assert np.array_equal(_largest_components(mask, 4), expected)
    assert _largest_components(mask, 28).sum() == 0 and _largest_components(np.zeros((3, 3, 3), bool), 1).sum() == 0


def test_cropped_envelope_and_layer_labels_equal_the_whole_grid_computation():
    """The brain envelope computed in a box equals the whole-grid one; layer labels follow their edges."""
    from brainsr.simulate.anatomy import TemplateMaps, _envelope, _layer_labels

    mask = np.zeros((60, 50, 70), bool)
    mask[25:35, 12:30, 30:40] = True
    mask[28:32, 18:22, 33:37] = False  # a hole, filled
    tm = TemplateMaps(mask, mask, mask, np.eye(4), 1.0, np.eye(4), mask.shape, (0, 0, 0))
    whole = ndi.binary_fill_holes(ndi.gaussian_filter(mask.astype(np.float32), 3.0) > 0.3)
    assert np.array_equal(_envelope(tm), whole) and whole[30, 20, 35]
    edges = np.array([1.0, 2.5, 2.5, 4.0])
    rel = np.array([-1.0, 0.0, 0.5, 1.0, 1.0001, 2.5, 3.0, 4.0, 4.5, np.nan])
    assert _layer_labels(rel, edges, [5, 6, 7, 8]).tolist() == [0, 0, 5, 5, 6, 6, 8, 8, 0, 0]
    expected = np.zeros(rel.shape, np.uint8)
    lower = 0.0
    for upper, lab in zip(edges, [5, 6, 7, 8], strict=True):  # the interval-by-interval definition
        expected[(rel > lower) & (rel <= upper)] = lab
        lower = upper
    assert np.array_equal(_layer_labels(rel, edges, [5, 6, 7, 8]), expected)


def test_pial_truth_label_is_the_csf_voxels_whose_pial_fraction_beats_every_parenchymal_one():
    # five voxels: pure CSF; CSF + pial layer; CSF + pial + less GM; CSF + pial + more GM; grey matter
    fr = {
        "csf": np.array([1.0, 0.5, 0.45, 0.4, 0.1], np.float32),
        "pial": np.array([0.0, 0.5, 0.35, 0.2, 0.0], np.float32),
        "gm": np.array([0.0, 0.0, 0.2, 0.3, 0.9], np.float32),
        "wm": np.zeros(5, np.float32),
    }
    argmax = np.array([LABELS["csf"]] * 4 + [LABELS["gm"]], np.uint8)
    np.testing.assert_array_equal(pial_voxels(fr, argmax), [False, True, True, False, False])


def test_truth_labels_hold_every_evaluated_class():
    """CSF, sinus and pial exist in the 1 mm truth (the default preset's), the pial shell touching the cortex; at
    2 mm (the tiny preset) the 1.5 mm pial layer is thinner than a voxel and the class is empty (README)."""
    params = subject_params(tiny_sim(template_resolution_mm=1), "P001", "P2")
    anat = build_anatomy(params, np.random.default_rng(params["anatomy_seed"]), 1)
    labels = anat.labels(anat.session_fractions(0.0))
    counts = {name: int((labels == LABELS[name]).sum()) for name in ("csf", "sinus", "pial", "gm")}
    assert all(counts.values()), counts
    assert counts["pial"] < counts["csf"]
    touching = ndi.binary_dilation(labels == LABELS["gm"], ndi.generate_binary_structure(3, 3)) & (
        labels == LABELS["pial"]
    )
    assert touching.sum() > 0.5 * counts["pial"]
