"""Alignment to the template (paper 3.1): rigid (6 dof), affine (12 dof) and non-linear warp (SyN).

Conventions (ANTs/ITK): a transform file ``from-A_to-B`` resamples an image of space A into space B, i.e. it maps
points of B to points of A (physical LPS coordinates). Transform lists are given in ``ants.apply_transforms``
order. Linear transforms are ITK ``.mat`` files; warps are single composite displacement fields (``.nii.gz``)
that already include the affine they were initialised with, so every alignment is one file plus its inverse.

Registrations run on images resampled to ``level_mm`` (2 mm by default): the transforms are then applied to the
native images, so the estimate's resolution costs accuracy well below a voxel while saving most of the time.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from brainsr.base.images import scoped_tmpdir
from brainsr.io import atomic_path
from brainsr.preprocess.itk import to_ants

__all__ = [
    "ALIGNMENTS",
    "COSTS",
    "LPS",
    "downsample",
    "invert_linear",
    "map_points",
    "ras_to_lps",
    "register_linear",
    "register_warp",
]

ALIGNMENTS = ("rigid", "affine", "warp")
#: Registration costs of the linear alignments: correlation ratio (own optimiser) and Mattes mutual information.
COSTS = ("cr", "mi")
_DOF = {"rigid": 6, "affine": 12}
_ANTS_TYPE = {"rigid": "Rigid", "affine": "Affine"}
#: RAS <-> LPS world coordinates (its own inverse).
LPS = np.diag([-1.0, -1.0, 1.0])
#: ANTs draws the metric's sample points with this seed (from the environment) unless the user set one: the same
#: inputs then give the same transforms (determinism).
os.environ.setdefault("ANTS_RANDOM_SEED", "2022")


def ras_to_lps(points: np.ndarray) -> np.ndarray:
    """RAS (nibabel) <-> LPS (ITK) world coordinates of an (N, 3) array (the map is its own inverse)."""
    return np.asarray(points, float) @ LPS


def downsample(img: nib.Nifti1Image | Any, level_mm: float) -> Any:
    """``img`` (nibabel or ANTs) as an ANTs image resampled (Gaussian anti-aliased, linear) to isotropic
    ``level_mm``; an ANTs image already on such a grid is returned as it is (so callers may downsample once)."""
    import ants

    a = to_ants(img) if isinstance(img, nib.Nifti1Image) else img
    if min(a.spacing) >= level_mm * 0.99 and max(a.spacing) <= level_mm * 1.01:
        return a
    sigma = [max(0.0, (level_mm / s) ** 2 - 1) ** 0.5 / 2.355 for s in a.spacing]
    if max(sigma) > 0.1:
        a = ants.smooth_image(a, sigma, sigma_in_physical_coordinates=False)
    return ants.resample_image(a, (level_mm,) * 3, use_voxels=False, interp_type=0)


def _save(src: str, dst: str | Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def register_linear(
    fixed: nib.Nifti1Image | Any,
    moving: nib.Nifti1Image | Any,
    alignment: str,
    cost: str,
    out: str | Path,
    *,
    fixed_mask: nib.Nifti1Image | Any | None = None,
    level_mm: float = 2.0,
    iterations: tuple[int, ...] = (100, 50, 20),
    initial: str | Path | None = None,
) -> dict:
    """Rigid or affine registration of ``moving`` to ``fixed``; writes the ``.mat`` transform to ``out``.

    ``cost``: ``"mi"`` (ANTs Mattes mutual information) or ``"cr"`` (correlation ratio, :mod:`.cr`, FLIRT's
    default cost in the paper). ``initial`` (CR only): a linear transform file to start from instead of the CR
    optimiser's own rotation search; the workflow passes the mutual-information estimate of the same alignment,
    which keeps CR out of the wrong minima its search found on some thick-slice sessions (README). Returns
    timing and the final cost information.
    """
    import ants

    if alignment not in _DOF:
        raise ValueError(f"linear alignment must be rigid or affine, got {alignment!r}")
    if cost not in COSTS:
        raise ValueError(f"unknown registration cost {cost!r}; choose one of {COSTS}")
    start = time.perf_counter()
    f, m = downsample(fixed, level_mm), downsample(moving, level_mm)
    fm = downsample(fixed_mask, level_mm) if fixed_mask is not None else None
    with scoped_tmpdir() as tmp:
        if cost == "cr":
            from brainsr.preprocess.cr import register_cr

            fm_bin = fm.threshold_image(0.5, 1e9) if fm is not None else None
            from brainsr.preprocess.cr import read_affine

            start_at = read_affine(initial) if initial else None
            transform, info = register_cr(f, m, _DOF[alignment], fixed_mask=fm_bin, initial=start_at)
            path = str(Path(tmp) / "cr.mat")
            ants.write_transform(transform, path)
        else:
            shrink = tuple(2 ** (len(iterations) - 1 - i) for i in range(len(iterations)))  # ... 4, 2, 1
            reg = ants.registration(
                f,
                m,
                type_of_transform=_ANTS_TYPE[alignment],
                aff_metric="mattes",
                aff_iterations=tuple(iterations),
                aff_shrink_factors=shrink,
                aff_smoothing_sigmas=tuple(float(s - 1) for s in shrink),
                mask=fm,
            )
            path = reg["fwdtransforms"][0]
            info = {}
        _save(path, out)
    info = {k: v for k, v in info.items() if isinstance(v, int | float | str | list)}
    return {"alignment": alignment, "cost": cost, "seconds": time.perf_counter() - start, **info}


def invert_linear(src: str | Path, dst: str | Path) -> None:
    """Write the inverse of an ITK linear transform."""
    import ants

    with scoped_tmpdir() as tmp:
        path = str(Path(tmp) / "inverse.mat")
        ants.write_transform(ants.invert_ants_transform(ants.read_transform(str(src))), path)
        _save(path, dst)


def register_warp(
    fixed: nib.Nifti1Image | Any,
    moving: nib.Nifti1Image | Any,
    initial: str | Path,
    out: str | Path,
    out_inverse: str | Path,
    *,
    level_mm: float = 2.0,
    iterations: tuple[int, ...] = (40, 20),
) -> dict:
    """SyN warp of ``moving`` to ``fixed`` initialised with the affine ``initial``.

    Writes the composite (affine + warp) displacement field on the fixed grid (``out``: resamples moving into
    fixed) and its inverse on the moving grid (``out_inverse``).
    """
    import ants

    start = time.perf_counter()
    f, m = downsample(fixed, level_mm), downsample(moving, level_mm)
    with scoped_tmpdir() as tmp:
        reg = ants.registration(
            f,
            m,
            type_of_transform="SyNOnly",
            initial_transform=str(initial),
            reg_iterations=tuple(iterations),
            syn_metric="mattes",
        )
        warp = [t for t in reg["fwdtransforms"] if t.endswith(".nii.gz")]
        inv = [t for t in reg["invtransforms"] if t.endswith(".nii.gz")]
        fwd_field = ants.apply_transforms(f, m, transformlist=[*warp, str(initial)], compose=str(Path(tmp) / "fwd"))
        inv_field = ants.apply_transforms(
            m, f, transformlist=[str(initial), *inv], whichtoinvert=[True, False], compose=str(Path(tmp) / "inv")
        )
        _save(fwd_field, out)
        _save(inv_field, out_inverse)
    return {"alignment": "warp", "cost": "mi", "seconds": time.perf_counter() - start}


def map_points(points_lps: np.ndarray, transforms: list[str]) -> np.ndarray:
    """Map (N, 3) LPS points through an ``ants.apply_transforms`` transform list (fixed-space points -> moving)."""
    import ants
    import pandas as pd

    df = pd.DataFrame(np.asarray(points_lps, float), columns=["x", "y", "z"])
    with scoped_tmpdir():
        out = ants.apply_transforms_to_points(3, df, transforms)
    return out[["x", "y", "z"]].to_numpy()
