"""Every evaluation output of one scan set in one call (paper 3.8.1, 3.8.3): the workflow's one job per scan set.

A scan set is the three sequences of one session on the analysis grid (the workflow's subject, session, desc).
:func:`evaluate_scan_set` runs, in this order, the functions the per-output commands run one process each:

- ``tissues`` + ``tissue_volumes``: CSF/GM/WM labels of the research T1w (:func:`segment_tissues`, research sets);
- ``imagemetrics``: MAE, NMSE, PSNR, SSIM against the research scans (:func:`evaluate_images`, methods);
- ``quality``: CJV, EFC, FWHM, WM2max, tissue statistics on the research T1w's tissues (:func:`evaluate_quality`);
- ``dseg`` + ``volumes``: multispectral classes and WMH (:func:`segment_classes`);
- ``agreement``: overlap with the research classes and/or the ground truth (:func:`evaluate_agreement`).

Each input image is read once (a memo of :func:`load_checked` serves every step), and every output is written
under a temporary name and renamed only once all of them are: a failure leaves none. The results are the same,
byte for byte, as those of the separate commands.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib

from brainsr.base.images import Loader, load_checked
from brainsr.io import atomic_path, atomic_write_json
from brainsr.metrics import SCAN_SET_OUTPUTS as OUTPUTS
from brainsr.metrics.evaluate import (
    TruthPath,
    evaluate_agreement,
    evaluate_images,
    evaluate_quality,
    image_metrics_record,
)
from brainsr.segment.run import segment_classes, segment_tissues

__all__ = ["OUTPUTS", "ScanSetInputs", "evaluate_scan_set", "memo_loader"]

#: Outputs that come in pairs: a label image and the JSON of its volumes.
_PAIRS = {"tissues": "tissue_volumes", "tissue_volumes": "tissues", "dseg": "volumes", "volumes": "dseg"}


@dataclass(frozen=True)
class ScanSetInputs:
    """The input files of one scan set; which are needed depends on the outputs asked for.

    ``images`` ({sequence: path}) and ``mask`` (its brain mask, the grid of its classes) always; ``prior`` the
    lesion-distribution template; for a method's scan set, the research scan set of the same prep: ``research``
    images (image metrics), ``research_mask`` (image and quality metrics; default ``mask``), ``tissues`` (its T1w
    tissue labels, unless made here) and ``reference`` (its classes, agreement); ``truth`` + ``lookup`` the
    synthetic cohort's ground-truth labels and their lookup table (agreement), ``truth_path`` how they reach the
    scan set's grid (:class:`~brainsr.metrics.evaluate.TruthPath`; default: nearest-neighbour resampling).
    """

    images: Mapping[str, str]
    mask: str
    prior: str | None = None
    research: Mapping[str, str] = field(default_factory=dict)
    research_mask: str | None = None
    tissues: str | None = None
    reference: str | None = None
    truth: str | None = None
    lookup: str | None = None
    truth_path: TruthPath | None = None


def memo_loader(load: Loader = load_checked) -> Loader:
    """``load`` that reads each file once: later calls with the same path return the first call's image."""
    cache: dict[str, nib.Nifti1Image] = {}

    def read(path: str | os.PathLike) -> nib.Nifti1Image:
        key = os.path.abspath(path)
        if key not in cache:
            cache[key] = load(path)
        return cache[key]

    return read


def _check_outputs(inputs: ScanSetInputs, out: Mapping[str, object]) -> None:
    unknown = sorted(set(out) - set(OUTPUTS))
    if unknown:
        raise ValueError(f"unknown scan-set outputs {unknown}; known: {list(OUTPUTS)}")
    unpaired = sorted(k for k in out if _PAIRS.get(k, k) not in out)
    if unpaired:
        raise ValueError(f"{unpaired} need their pair {[_PAIRS[k] for k in unpaired]}")
    needs = {
        "imagemetrics": inputs.research,
        "quality": inputs.tissues or "tissues" in out,
        "agreement": "dseg" in out and (inputs.reference or inputs.truth),
    }
    missing = sorted(k for k, given in needs.items() if k in out and not given)
    if missing:
        raise ValueError(
            f"{missing} need their inputs: imagemetrics the research images, quality the research tissues (or a "
            "tissues output), agreement a dseg output and a reference or ground truth"
        )


def _run(
    inputs: ScanSetInputs, staged: Mapping[str, Path], load: Loader, seed: int, components: int, wmh: Mapping, axis: str
) -> dict[str, dict]:
    """The JSON results; the label images are written to their ``staged`` names (read back by the later steps)."""
    results: dict[str, dict] = {}
    research_mask = inputs.research_mask or inputs.mask
    tissues = inputs.tissues
    if "tissues" in staged:
        tissues = str(staged["tissues"])
        t1 = inputs.images["T1w"]
        results["tissue_volumes"] = segment_tissues(t1, inputs.mask, tissues, seed, components, load=load)
    if "imagemetrics" in staged:
        metrics = evaluate_images(inputs.images, inputs.research, research_mask, axis, load=load)
        results["imagemetrics"] = image_metrics_record(metrics)
    if "quality" in staged:
        results["quality"] = evaluate_quality(inputs.images, tissues, research_mask, load=load)
    if "dseg" in staged:
        seg = str(staged["dseg"])
        results["volumes"] = segment_classes(
            inputs.images, inputs.mask, inputs.prior, seg, seed=seed, wmh=wmh, load=load
        )
    if "agreement" in staged:
        results["agreement"] = evaluate_agreement(
            str(staged["dseg"]), inputs.reference, inputs.truth, inputs.lookup, truth_path=inputs.truth_path, load=load
        )
    return results


def evaluate_scan_set(
    inputs: ScanSetInputs,
    out: Mapping[str, str | os.PathLike],
    *,
    seed: int = 0,
    components: int = 4,
    wmh: Mapping | None = None,
    axis: str = "axial",
) -> dict[str, dict]:
    """Write the evaluation outputs ``out`` ({kind: path}, kinds of :data:`OUTPUTS`) of one scan set (3.8.1, 3.8.3).

    ``seed`` seeds both mixtures (T1w tissues with ``components`` components; classes), ``wmh`` holds the WMH
    parameters of :func:`brainsr.segment.wmh.wmh_mask`, ``axis`` the SSIM slice axis. Returns the JSON results
    by kind. Nothing is written unless every output is.
    """
    _check_outputs(inputs, out)
    load = memo_loader()
    with contextlib.ExitStack() as stack:
        staged = {kind: stack.enter_context(atomic_path(path)) for kind, path in out.items()}
        results = _run(inputs, staged, load, seed, components, dict(wmh or {}), axis)
        for kind, result in results.items():
            atomic_write_json(result, staged[kind])
    return results
