"""ITK (ANTsPy) settings and conversion: every module that imports ``ants`` imports this first.

ITK's multithreaded filters and metrics (N4, ANTs registration) do not give the same result twice: two 2-thread
runs of one session's preparation differed in 3500 brain-mask voxels, two 1-thread runs in none. One ITK thread per
process (unless the user sets it) makes preprocessing deterministic; the workflow runs jobs side by side.
"""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np

os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")

__all__ = ["to_ants"]


def to_ants(img: nib.Nifti1Image) -> object:
    """A nibabel image as an ``ants.ANTsImage`` (float32, same world geometry)."""
    import ants

    clean = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine)
    clean.set_qform(img.affine, code=1)
    clean.set_sform(img.affine, code=1)
    clean.header.set_xyzt_units("mm", "sec")  # "unknown" time units make ANTsPy print a warning per call
    return ants.from_nibabel_nifti(clean)
