"""Atomic file writing: every output is written under a temporary name and renamed, so no partial file remains."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd


def _tmp(path: Path) -> Path:
    """Hidden temporary sibling of ``path`` keeping its extension (writers infer the format from it)."""
    suffix = "".join(path.suffixes) or ".tmp"
    return path.with_name(f".{path.name.removesuffix(suffix)}.tmp{os.getpid()}{suffix}")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write to; rename it onto ``path`` only when the writer succeeded."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_json(
    result: object, path: str | os.PathLike, *, sort_keys: bool = True, default: Callable[[Any], Any] | None = None
) -> Path:
    """Write ``result`` as JSON (sorted keys, 2-space indent, final newline: every result file's form) atomically;
    ``sort_keys=False`` keeps a record's own order (sidecars), ``default`` converts what JSON cannot hold."""
    return atomic_write_text(json.dumps(result, indent=2, sort_keys=sort_keys, default=default) + "\n", path)


def atomic_save_nifti(img: nib.Nifti1Image, path: str | os.PathLike) -> Path:
    """Save a NIfTI image to ``path`` atomically."""
    with atomic_path(path) as tmp:
        nib.save(img, tmp)
    return Path(path)


def atomic_write_tsv(df: pd.DataFrame, path: str | os.PathLike, **to_csv: object) -> Path:
    """Write a table as tab-separated values atomically (keyword arguments go to ``DataFrame.to_csv``)."""
    return atomic_write_text(df.to_csv(sep="\t", index=False, **to_csv), path)


def atomic_savefig(fig: object, path: str | os.PathLike, **savefig: object) -> Path:
    """Save a matplotlib figure atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **savefig)  # type: ignore[attr-defined]
    return Path(path)


def atomic_savez(path: str | os.PathLike, **arrays: object) -> Path:
    """Save arrays as a compressed ``.npz`` atomically (``path`` must end in ``.npz``)."""
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)
    return Path(path)


def write_with_summary(table: pd.DataFrame, summary: pd.DataFrame, out: str | os.PathLike) -> None:
    """A measurement's table at ``out`` and its summary beside it (``<stem>_summary.tsv``), then the summary printed
    (the benchmark scripts' output)."""
    out = Path(out)
    atomic_write_tsv(table, out, float_format="%.4f")
    atomic_write_tsv(summary, out.with_name(out.stem + "_summary.tsv"), float_format="%.4f")
    print(summary.to_string(index=False))
