"""BIDS JSON sidecars of the images brainsr writes: the image's name with ``.json``, ``GeneratedBy`` first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from brainsr import __version__
from brainsr.io import atomic_write_json
from brainsr.paths import sidecar

__all__ = ["write_sidecar"]


def _plain(value: Any) -> Any:
    """What JSON cannot hold: numpy numbers as numbers, anything else (paths) as text."""
    if isinstance(value, np.integer):
        return int(value)
    return float(value) if isinstance(value, np.floating) else str(value)


def write_sidecar(image: str | Path, **fields: Any) -> Path:
    """The sidecar of ``image``: ``GeneratedBy`` (brainsr and its version), then ``fields`` in their order."""
    meta = {"GeneratedBy": [{"Name": "brainsr", "Version": __version__}], **fields}
    return atomic_write_json(meta, sidecar(image), sort_keys=False, default=_plain)
