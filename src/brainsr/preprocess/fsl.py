"""FSL as an optional engine (paper 3.1 used FSL): BET brain extraction and FAST bias correction, run through
fslpy's wrappers when ``$FSLDIR`` is set. Nothing here is needed by the default chain (ANTsPy and own code)."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from brainsr.base.images import scoped_tmpdir

__all__ = ["FSLMissing", "bet_mask", "fast_restore", "require_fsl"]


class FSLMissing(RuntimeError):
    """FSL was asked for but ``$FSLDIR`` or the tool is missing."""


def require_fsl(tool: str, instead: str) -> None:
    """Raise :class:`FSLMissing` (naming ``instead``, the built-in alternative) unless ``$FSLDIR/bin/<tool>``
    exists: fslpy's wrappers run the tools from there."""
    fsldir = os.environ.get("FSLDIR", "")
    if not fsldir:
        raise FSLMissing(f"FSL {tool} requested but $FSLDIR is not set; install FSL and set $FSLDIR, or use {instead}")
    path = Path(fsldir) / "bin" / tool
    if not path.is_file():
        raise FSLMissing(f"FSL {tool} requested but {path} does not exist; check $FSLDIR, or use {instead}")


def bet_mask(img: nib.Nifti1Image, frac: float) -> np.ndarray:
    """Boolean brain mask of FSL ``bet <img> <out> -m -n -R -f <frac>`` (mask only, robust centre)."""
    from fsl.wrappers import LOAD, bet

    require_fsl("bet", "engine 'bet' (built in) or 'morph'")
    with scoped_tmpdir(prefix="brainsr-bet-"):
        out = bet(img, LOAD, mask=True, seg=False, robust=True, fracintensity=float(frac))
        return np.asarray(out["output_mask"].dataobj) > 0


def fast_restore(img: nib.Nifti1Image) -> np.ndarray:
    """Bias-corrected image of FSL ``fast -B`` (its ``_restore`` output)."""
    from fsl.wrappers import LOAD, fast

    require_fsl("fast", "engine 'n4'")
    with scoped_tmpdir(prefix="brainsr-fast-"):
        out = fast(img, out=LOAD, B=True)
        return np.asarray(out["out_restore"].dataobj, dtype=np.float32)
