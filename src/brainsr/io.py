"""Atomic file writing: every output is written under a temporary name and renamed, so no partial file remains."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import pandas as pd


def _tmp(path: Path) -> Path:
    """Hidden temporary sibling of ``path`` keeping its extension (writers infer the format from it)."""
    suffix = "".join(path.suffixes) or ".tmp"
    return path.with_name(f".{path.name.removesuffix(suffix)}.tmp{os.getpid()}{suffix}")


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def atomic_save_nifti(img: nib.Nifti1Image, path: str | os.PathLike) -> Path:
    """Save a NIfTI image to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    nib.save(img, tmp)
    os.replace(tmp, path)
    return path


def atomic_write_tsv(df: pd.DataFrame, path: str | os.PathLike, **to_csv: object) -> Path:
    """Write a table as tab-separated values atomically (keyword arguments go to ``DataFrame.to_csv``)."""
    return atomic_write_text(df.to_csv(sep="\t", index=False, **to_csv), path)


def atomic_savefig(fig: object, path: str | os.PathLike, **savefig: object) -> Path:
    """Save a matplotlib figure atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    fig.savefig(tmp, **savefig)  # type: ignore[attr-defined]
    os.replace(tmp, path)
    return path
