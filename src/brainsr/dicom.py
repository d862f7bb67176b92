"""DICOM input: one series folder straight from the scanner, converted to NIfTI with dcm2niix (issue 7).

Clinical scans often leave the scanner as DICOM. ``brainsr upsample`` accepts a folder holding one image series per
sequence and converts it with dcm2niix (the PyPI ``dcm2niix`` package ships the converter; a ``dcm2niix`` on PATH is
used otherwise). dcm2niix is run with its anonymising sidecar option, its NIfTI comment field emptied, and only an
allow-list of acquisition parameters (field strength, TR, TE, TI, flip angle, slice thickness) is ever read from
the sidecar, so names, IDs, birth dates and acquisition dates of the DICOM headers never reach an output.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from brainsr.base.images import ImageInputError

__all__ = ["ACQUISITION_FIELDS", "DicomInputError", "convert_series", "dcm2niix_path", "dcm2niix_version"]

#: Sidecar fields copied into records: acquisition parameters that identify no person.
ACQUISITION_FIELDS = (
    "Modality",
    "MagneticFieldStrength",
    "MRAcquisitionType",
    "RepetitionTime",
    "EchoTime",
    "InversionTime",
    "FlipAngle",
    "SliceThickness",
    "SpacingBetweenSlices",
)


class DicomInputError(ImageInputError):
    """A DICOM folder that cannot be converted to one 3D image; the message names the folder and the problem."""


def dcm2niix_path() -> str:
    """The dcm2niix executable: the PyPI package's, else one on PATH; a clear error when there is none."""
    try:
        import dcm2niix

        if Path(dcm2niix.bin).is_file():
            return str(dcm2niix.bin)
    except ImportError:
        pass
    found = shutil.which("dcm2niix")
    if found is None:
        raise RuntimeError("DICOM input needs dcm2niix: pip install dcm2niix (a dependency of brainsr)")
    return found


@functools.cache
def dcm2niix_version() -> str:
    """The converter's version line (e.g. ``v1.0.20260724``)."""
    run = subprocess.run([dcm2niix_path(), "--version"], capture_output=True, text=True, check=False)
    words = (run.stdout + run.stderr).split()
    return next((w for w in words if w.startswith("v1.") or w.startswith("v2.")), "unknown")


def convert_series(folder: str | os.PathLike, out_dir: str | os.PathLike, name: str) -> tuple[Path, dict[str, Any]]:
    """Convert the one image series in ``folder`` to ``<out_dir>/<name>.nii.gz``.

    Returns the NIfTI path and the allow-listed acquisition parameters of its sidecar. Raises
    :class:`DicomInputError` when the folder holds no image series or several of them.
    """
    folder, out_dir = Path(folder), Path(out_dir)
    if not folder.is_dir():
        raise DicomInputError(folder, "not a folder of DICOM files")
    if not any(p.is_file() for p in folder.rglob("*")):
        raise DicomInputError(folder, "the DICOM folder is empty")
    work = out_dir / f"dcm2niix_{name}"
    work.mkdir(parents=True, exist_ok=False)
    # -ba y: anonymised sidecar; -c "": no comment (0020,4000) in aux_file; -w 1: overwrite; -f: series number only
    cmd = [dcm2niix_path(), "-z", "y", "-b", "y", "-ba", "y", "-c", "", "-w", "1", "-f", "series%s"]
    run = subprocess.run([*cmd, "-o", str(work), str(folder)], capture_output=True, text=True, check=False)
    images = sorted(work.glob("*.nii.gz"))
    if not images:
        tail = " | ".join(line for line in (run.stdout + run.stderr).splitlines()[-3:] if line.strip())
        raise DicomInputError(folder, f"no DICOM image series could be converted (dcm2niix: {tail or 'no output'})")
    if len(images) > 1:
        series = ", ".join(p.name.removesuffix(".nii.gz") for p in images)
        raise DicomInputError(
            folder, f"holds {len(images)} image series ({series}); point the option at one series' folder"
        )
    target = out_dir / f"{name}.nii.gz"
    images[0].replace(target)
    sidecar = images[0].with_name(images[0].name.removesuffix(".nii.gz") + ".json")
    fields: dict[str, Any] = {}
    if sidecar.is_file():
        found = json.loads(sidecar.read_text())
        fields = {k: found[k] for k in ACQUISITION_FIELDS if k in found}
    shutil.rmtree(work, ignore_errors=True)
    return target, fields
