"""Measure the brain-extraction engines (Li et al. 2022, section 3.1) against the synthetic cohort's ground truth.

For each selected patient session this script mimics what the pipeline hands :func:`extract_brain`:

1. N4 bias-field correction of T1w, T2w and FLAIR on their native grids (head mask from ``ants.get_mask``,
   shrink factor 4);
2. T1w, T2w and FLAIR resampled (trilinear) onto an isotropic grid spanning the T1w field of view, in T1w scanner
   space. T2w/FLAIR are aligned with the ground-truth poses (``x_T1w = pose_T1w @ inv(pose_seq) @ x_seq``); the
   pipeline itself uses a rigid registration.

Each engine then runs in a fresh child process (so the timing is that of a cold call, as in a
Snakemake job, and the peak resident memory of the call can be read). Its mask is resampled (nearest neighbour)
onto the native T1w grid and compared with the ground-truth intracranial mask (Dice, volumes).

Usage::

    python benchmarks/brain_extraction.py COHORT N_SUBJECTS OUT.tsv [--first 5] [--engines hybrid morph:T1w]
        [--sessions clinical research] [--workdir DIR] [--iso 1.0]

Writes a tab-separated table (subject, session, protocol, engine, dice, volume_ml, gt_volume_ml, seconds,
peak_rss_mb) and prints mean ± SD Dice per engine × session.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

SEQUENCES = ("T1w", "T2w", "FLAIR")


def read_pose(path: Path) -> np.ndarray:
    """A 4x4 subject-frame -> scanner (RAS mm) matrix from a text file (``#`` lines are comments)."""
    rows = [line.split() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    pose = np.array(rows, dtype=float)
    if pose.shape != (4, 4):
        raise ValueError(f"{path}: expected a 4x4 matrix, got shape {pose.shape}")
    return pose


def iso_grid(ref: nib.Nifti1Image, spacing: float) -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and affine of an isotropic grid with ``ref``'s axes that spans ``ref``'s field of view."""
    zooms = np.linalg.norm(ref.affine[:3, :3], axis=0)
    direction = ref.affine[:3, :3] / zooms
    extent = np.asarray(ref.shape[:3]) * zooms
    shape = tuple(int(n) for n in np.maximum(np.ceil(extent / spacing - 1e-6), 1))
    corner = ref.affine[:3, 3] - direction @ (0.5 * zooms)  # outer corner of voxel (0, 0, 0)
    affine = np.eye(4)
    affine[:3, :3] = direction * spacing
    affine[:3, 3] = corner + direction @ np.full(3, 0.5 * spacing)
    return shape, affine


def resample(
    data: np.ndarray,
    src_affine: np.ndarray,
    shape: tuple[int, ...],
    dst_affine: np.ndarray,
    world: np.ndarray | None = None,
    order: int = 1,
) -> np.ndarray:
    """Resample ``data`` onto ``(shape, dst_affine)``; ``world`` maps destination mm to source mm (default identity)."""
    world = np.eye(4) if world is None else world
    vox = np.linalg.inv(src_affine) @ world @ dst_affine
    out = ndi.affine_transform(
        data.astype(np.float32, copy=False),
        vox[:3, :3],
        offset=vox[:3, 3],
        output_shape=shape,
        order=order,
        mode="constant",
        cval=0.0,
    )
    return out


def n4(img: nib.Nifti1Image) -> nib.Nifti1Image:
    """N4 bias-field correction with an automatic head mask (as the pipeline does before brain extraction)."""
    import ants

    from brainsr.base.images import scoped_tmpdir
    from brainsr.preprocess.itk import to_ants

    with scoped_tmpdir():
        a = to_ants(img)
        mask = ants.get_mask(a)
        corrected = ants.n4_bias_field_correction(a, mask=mask, shrink_factor=4)
        data = corrected.numpy().astype(np.float32)
    return nib.Nifti1Image(data, img.affine)


def prepare_session(cohort: Path, sub: str, ses: str, workdir: Path, spacing: float) -> dict[str, Path]:
    """Bias-corrected sequences on the isotropic T1w-space grid, cached under ``workdir``; returns their paths."""
    from brainsr.base.images import load_checked

    out = {seq: workdir / f"sub-{sub}_ses-{ses}_space-T1wiso_{seq}.nii.gz" for seq in SEQUENCES}
    if all(p.exists() for p in out.values()):
        return out
    anat = cohort / f"sub-{sub}" / f"ses-{ses}" / "anat"
    gt = cohort / "derivatives" / "groundtruth" / f"sub-{sub}" / f"ses-{ses}" / "anat"
    ref = load_checked(anat / f"sub-{sub}_ses-{ses}_T1w.nii.gz")
    shape, affine = iso_grid(ref, spacing)
    pose_t1 = read_pose(gt / f"sub-{sub}_ses-{ses}_from-subject_to-T1w_mode-image_xfm.txt")
    for seq in SEQUENCES:
        img = n4(load_checked(anat / f"sub-{sub}_ses-{ses}_{seq}.nii.gz"))
        pose = read_pose(gt / f"sub-{sub}_ses-{ses}_from-subject_to-{seq}_mode-image_xfm.txt")
        world = pose @ np.linalg.inv(pose_t1)  # T1w scanner mm -> this sequence's scanner mm
        data = resample(np.asarray(img.dataobj), img.affine, shape, affine, world)
        nib.Nifti1Image(np.clip(data, 0, None).astype(np.float32), affine).to_filename(out[seq])
    return out


def _engine_child(paths: dict[str, str], engine: str, out_path: str, params: dict, queue: mp.Queue) -> None:
    import resource

    try:
        from brainsr.preprocess.brain import extract_brain

        images = {seq: nib.load(p) for seq, p in paths.items()}
        for img in images.values():
            img.get_fdata(dtype=np.float32)
        start = time.perf_counter()
        mask = extract_brain(images, engine, **params)
        seconds = time.perf_counter() - start
        mask.to_filename(out_path)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        queue.put({"seconds": seconds, "peak_rss_mb": rss, "error": ""})
    except Exception as exc:
        queue.put({"seconds": float("nan"), "peak_rss_mb": float("nan"), "error": f"{type(exc).__name__}: {exc}"})


def run_engine(paths: dict[str, Path], engine: str, out_path: Path, params: dict) -> dict:
    """Run one engine in a fresh (spawned) process; returns seconds, peak RSS (MB) and an error message."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(
        target=_engine_child, args=({k: str(v) for k, v in paths.items()}, engine, str(out_path), params, queue)
    )
    proc.start()
    result = queue.get()
    proc.join()
    return result


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two boolean arrays."""
    denom = int(a.sum()) + int(b.sum())
    return 2.0 * int(np.logical_and(a, b).sum()) / denom if denom else 1.0


def evaluate(mask_path: Path, gt_path: Path) -> tuple[float, float, float]:
    """Dice of the engine mask (nearest-neighbour onto the native T1w grid) vs the ground truth, and both volumes."""
    gt = nib.load(gt_path)
    gt_mask = np.asarray(gt.dataobj) > 0
    m = nib.load(mask_path)
    on_native = resample(np.asarray(m.dataobj, np.float32), m.affine, gt.shape[:3], gt.affine, order=0) > 0.5
    vox_gt = float(np.prod(np.linalg.norm(gt.affine[:3, :3], axis=0)))
    vox_m = float(np.prod(np.linalg.norm(m.affine[:3, :3], axis=0)))
    volume = float((np.asarray(m.dataobj) > 0).sum()) * vox_m / 1000.0
    return dice(on_native, gt_mask), volume, float(gt_mask.sum()) * vox_gt / 1000.0


def read_participants(cohort: Path) -> dict[str, str]:
    """participant label (without ``sub-``) -> protocol."""
    with (cohort / "participants.tsv").open() as fh:
        return {row["participant_id"][4:]: row["protocol"] for row in csv.DictReader(fh, delimiter="\t")}


def summarise(rows: list[dict]) -> str:
    """mean ± SD Dice (and mean seconds) per engine × session."""
    lines = [f"{'engine':<12} {'session':<10} {'n':>3} {'dice mean ± SD':>16} {'min':>6} {'seconds':>8} {'RSS MB':>7}"]
    keys = sorted({(r["engine"], r["session"]) for r in rows})
    for engine, ses in keys:
        sel = [r for r in rows if r["engine"] == engine and r["session"] == ses and r["error"] == ""]
        failed = sum(1 for r in rows if r["engine"] == engine and r["session"] == ses and r["error"])
        if not sel:
            lines.append(f"{engine:<12} {ses:<10} {0:>3} (all {failed} failed)")
            continue
        d = np.array([r["dice"] for r in sel])
        s = np.array([r["seconds"] for r in sel])
        m = np.array([r["peak_rss_mb"] for r in sel])
        lines.append(
            f"{engine:<12} {ses:<10} {len(sel):>3} {d.mean():>8.4f} ± {d.std(ddof=1) if len(d) > 1 else 0:.4f} "
            f"{d.min():>6.3f} {s.mean():>8.1f} {m.max():>7.0f}" + (f"  ({failed} failed)" if failed else "")
        )
    protocols = sorted({r["protocol"] for r in rows if r["session"] != "research"})
    if protocols:
        lines.append("clinical sessions by protocol (mean Dice, n):")
        for engine in sorted({r["engine"] for r in rows}):
            cells = []
            for prot in protocols:
                d = [r["dice"] for r in rows if r["engine"] == engine and r["protocol"] == prot and not r["error"]]
                cells.append(f"{prot} {np.mean(d):.4f} ({len(d)})" if d else f"{prot} -")
            lines.append(f"  {engine:<12} " + "  ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cohort", type=Path, help="BIDS root of the synthetic cohort")
    ap.add_argument("n_subjects", type=int, help="number of patients to measure")
    ap.add_argument("out", type=Path, help="output TSV")
    ap.add_argument("--first", type=int, default=1, help="number of the first patient (P<first>), default 1")
    ap.add_argument(
        "--engines",
        nargs="+",
        default=["hybrid", "morph", "bet"],
        help="engines to run; ENGINE:T1w (or ENGINE:T1w+T2w) gives the engine only those sequences",
    )
    ap.add_argument("--sessions", nargs="+", default=["clinical", "research"])
    ap.add_argument("--workdir", type=Path, default=None, help="cache of prepared inputs and masks")
    ap.add_argument("--iso", type=float, default=1.0, help="isotropic grid spacing (mm), default 1")
    ap.add_argument("--params", default="{}", help='JSON dict of engine parameters, e.g. \'{"bet": {"frac": 0.4}}\'')
    args = ap.parse_args(argv)

    params = json.loads(args.params)
    protocols = read_participants(args.cohort)
    workdir = args.workdir or args.out.with_suffix(".work")
    workdir.mkdir(parents=True, exist_ok=True)
    subjects = [f"P{i:03d}" for i in range(args.first, args.first + args.n_subjects)]
    rows: list[dict] = []
    for sub in subjects:
        for ses in args.sessions:
            anat = args.cohort / f"sub-{sub}" / f"ses-{ses}" / "anat"
            if not anat.is_dir():
                print(f"skip sub-{sub} ses-{ses}: not in the cohort", file=sys.stderr)
                continue
            t0 = time.perf_counter()
            paths = prepare_session(args.cohort, sub, ses, workdir, args.iso)
            print(f"sub-{sub} ses-{ses}: inputs ready ({time.perf_counter() - t0:.0f} s)", flush=True)
            gt = (
                args.cohort
                / "derivatives"
                / "groundtruth"
                / f"sub-{sub}"
                / f"ses-{ses}"
                / "anat"
                / f"sub-{sub}_ses-{ses}_space-T1w_desc-brain_mask.nii.gz"
            )
            protocol = protocols.get(sub, "n/a") if ses != "research" else "research"
            for spec in args.engines:
                engine, _, only = spec.partition(":")
                given = {seq: p for seq, p in paths.items() if not only or seq in only.split("+")}
                label = spec.replace(":", "-").replace("+", "")
                mask_path = workdir / f"sub-{sub}_ses-{ses}_engine-{label}_mask.nii.gz"
                res = run_engine(given, engine, mask_path, params.get(engine, {}))
                row = {"subject": f"sub-{sub}", "session": ses, "protocol": protocol, "engine": spec, **res}
                if res["error"]:
                    row.update(dice=float("nan"), volume_ml=float("nan"), gt_volume_ml=float("nan"))
                else:
                    d, vol, gt_vol = evaluate(mask_path, gt)
                    row.update(dice=d, volume_ml=vol, gt_volume_ml=gt_vol)
                rows.append(row)
                print(
                    f"  {engine:<6} dice {row['dice']:.4f} vol {row['volume_ml']:.0f}/{row['gt_volume_ml']:.0f} ml "
                    f"{row['seconds']:.1f} s {row['peak_rss_mb']:.0f} MB {row['error']}",
                    flush=True,
                )
    cols = [
        "subject",
        "session",
        "protocol",
        "engine",
        "dice",
        "volume_ml",
        "gt_volume_ml",
        "seconds",
        "peak_rss_mb",
        "error",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, delimiter="\t", extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    print(summarise(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
