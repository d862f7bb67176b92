"""The linear transforms also in FSL FLIRT's convention (the paper aligned with FLIRT, 3.1), written by fslpy.

The chain's transforms are ITK files: a ``from-A_to-B`` transform maps points of B to points of A (LPS). FLIRT's
matrices map the *source* image's scaled-voxel coordinates (voxel x pixdim, x flipped for images with a positive
determinant) to the *reference*'s. fslpy converts between the two given both images, so an FSL user can run
``flirt -in <source> -ref <reference> -applyxfm -init <file>.flirt.mat`` or ``convert_xfm`` on them.
"""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np

from brainsr.io import atomic_path
from brainsr.preprocess.register import LPS

__all__ = ["itk_world_affine", "read_flirt_world", "write_flirt"]


def itk_world_affine(itk_file: str | os.PathLike) -> np.ndarray:
    """4x4 RAS world map, source (the transform's moving image) -> reference (its fixed image), of an ITK linear
    transform file (which maps fixed LPS points to moving LPS points)."""
    from brainsr.preprocess.cr import read_affine

    flip = nib.affines.from_matvec(LPS)
    return flip @ np.linalg.inv(read_affine(itk_file)) @ flip


def _image(path: str | os.PathLike) -> object:
    from fsl.data.image import Image

    return Image(str(path))  # the header only: fslpy reads the data lazily


def write_flirt(
    itk_file: str | os.PathLike, source: str | os.PathLike, reference: str | os.PathLike, out: str | os.PathLike
) -> None:
    """Write the FLIRT matrix (``source`` -> ``reference`` images) of an ITK linear transform."""
    from fsl.transform.flirt import toFlirt, writeFlirt

    matrix = toFlirt(itk_world_affine(itk_file), _image(source), _image(reference), from_="world", to="world")
    with atomic_path(out) as tmp:
        writeFlirt(matrix, str(tmp))


def read_flirt_world(
    flirt_file: str | os.PathLike, source: str | os.PathLike, reference: str | os.PathLike
) -> np.ndarray:
    """4x4 RAS world map, ``source`` -> ``reference``, of a FLIRT matrix file (fslpy's reader)."""
    from fsl.transform.flirt import fromFlirt, readFlirt

    return fromFlirt(readFlirt(str(flirt_file)), _image(source), _image(reference), from_="world", to="world")
