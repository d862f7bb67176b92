"""Array helpers shared across stages: the bounding box of a mask (to compute only where a mask reaches), Dice
overlap, and volumes in millilitres."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["bounding_box", "dice", "volume_ml"]


def bounding_box(mask: np.ndarray, margin: int | Sequence[int] = 0) -> tuple[slice, ...]:
    """Slices of the bounding box of the nonzero voxels of ``mask``, widened by ``margin`` voxels (one number, or
    one per axis) and clipped to the array. ``ValueError`` if ``mask`` has no nonzero voxel."""
    idx = np.nonzero(mask)
    if idx[0].size == 0:
        raise ValueError("bounding_box: the mask is empty")
    pads = np.broadcast_to(np.asarray(margin, int), (np.ndim(mask),))
    return tuple(
        slice(max(0, int(i.min()) - int(p)), min(n, int(i.max()) + int(p) + 1))
        for i, p, n in zip(idx, pads, np.shape(mask), strict=True)
    )


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap 2|A∩B| / (|A| + |B|) of two boolean (or nonzero) arrays; 1.0 when both are empty."""
    a, b = np.asarray(a) != 0, np.asarray(b) != 0
    if a.shape != b.shape:
        raise ValueError(f"dice: shapes differ {a.shape} vs {b.shape}")
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(a, b).sum()) / total


def volume_ml(mask: np.ndarray, zooms: Sequence[float]) -> float:
    """Volume of a binary mask (or the sum of a fractional map) in millilitres: voxels × voxel volume / 1000."""
    return float(np.asarray(mask, np.float64).sum() * float(np.prod(zooms)) / 1000.0)
