"""Blinded visual-rating sheet (paper 3.8.4): coded images in shuffled order, a CSV sheet and a separate key.

For each subject the research, interpolated and upsampled scan sets are copied under codes (``item-001`` ...) in a
seeded random order, each with a PNG (3 sequences × axial/coronal/sagittal). The sheet lists the items with empty
0-5 score columns per sequence; the key, written to a different file, says which subject and scan set each code is.
The copies keep only voxels and geometry: no header text of the inputs (NIfTI ``descrip`` etc.) is carried over.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from brainsr.base.display import VIEWS, display_window, mask_centre, show_slice
from brainsr.io import atomic_save_nifti, atomic_savefig, atomic_write_text

__all__ = ["RATING_SCALE", "write_rating_sheet"]

RATING_SCALE = "0 = non-diagnostic ... 5 = excellent, research quality"


def _anonymous_copy(path: str) -> nib.Nifti1Image:
    """Voxels and affine of an image in a fresh header (no free-text fields of the input)."""
    img = nib.load(path)
    out = nib.Nifti1Image(np.asarray(img.dataobj, np.float32), img.affine)
    out.set_qform(img.affine, code=1)
    out.set_sform(img.affine, code=1)
    return out


def _montage(images: Mapping[str, nib.Nifti1Image], title: str) -> Figure:
    canon = {k: nib.as_closest_canonical(v) for k, v in images.items()}
    first = next(iter(canon.values()))
    centre = mask_centre(np.asarray(first.dataobj) > 0)
    zooms = np.linalg.norm(first.affine[:3, :3], axis=0)
    fig = Figure(figsize=(9, 3 * len(canon) + 0.5), layout="constrained")
    axes = fig.subplots(len(canon), 3, squeeze=False)
    for r, (seq, img) in enumerate(canon.items()):
        d = np.asarray(img.dataobj, np.float32)
        lo, hi = display_window(d, d > 0)
        for c, view in enumerate(VIEWS):
            show_slice(axes[r, c], d, centre, view, zooms, cmap="gray", vmin=lo, vmax=hi)
        axes[r, 0].set_ylabel(seq)
    fig.suptitle(title)
    return fig


def write_rating_sheet(
    spec: Mapping[str, Mapping[str, Mapping[str, str]]],
    images_dir: str | Path,
    sheet: str | Path,
    key: str | Path,
    seed: int = 0,
) -> pd.DataFrame:
    """Write coded images, the raters' sheet and the key; returns the key.

    ``spec``: ``{subject: {scan set name: {sequence: path}}}`` (e.g. research / interpolated / upsampled).
    """
    images_dir = Path(images_dir)
    items = [(subject, name) for subject, sets in spec.items() for name in sets]
    if not items:
        raise ValueError("the rating sheet needs at least one subject with scan sets")
    order = np.random.default_rng(seed).permutation(len(items))
    sheet_rows, key_rows = [], []
    for number, index in enumerate(order, start=1):
        subject, name = items[index]
        code = f"item-{number:03d}"
        copies = {seq: _anonymous_copy(path) for seq, path in spec[subject][name].items()}
        files = {}
        for seq, img in copies.items():
            files[seq] = f"{code}_{seq}.nii.gz"
            atomic_save_nifti(img, images_dir / files[seq])
        atomic_savefig(_montage(copies, f"{code} (sub-{subject})"), images_dir / f"{code}.png", dpi=90)
        row = {"item": code, "subject": subject, "figure": f"{code}.png"}
        row.update({f"file_{seq}": f for seq, f in files.items()})
        row.update({f"score_{seq}": "" for seq in copies})
        sheet_rows.append({**row, "comments": ""})
        key_rows.append(
            {
                "item": code,
                "subject": subject,
                "scan_set": name,
                **{f"source_{seq}": p for seq, p in spec[subject][name].items()},
            }
        )
    sheet_df = pd.DataFrame(sheet_rows)
    atomic_write_text(sheet_df.to_csv(index=False), sheet)
    key_df = pd.DataFrame(key_rows)
    atomic_write_text(key_df.to_csv(index=False), key)
    return key_df
