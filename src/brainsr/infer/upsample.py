"""``brainsr upsample``: one patient's clinical scan set through a trained model, without a BIDS dataset or a config.

Paper sections 5-6: a trained model brings routinely acquired clinical T1w, T2w and FLAIR scans into research
pipelines. The scans go through the preprocessing the model was trained with (bias correction, brain extraction,
alignment to the template with the model's alignment and resampling variant, crop, rescale; paper 3.1), then the
model (3.6); the results are written on the template grid and mapped back onto each clinical acquisition grid,
with the brain mask, a QC figure and a JSON record of the model, the software versions and the steps.

Every output is first written to a staging folder inside the output folder and moved into place only when all
steps have succeeded: a failure leaves no partial outputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nibabel as nib
import numpy as np

from brainsr import TEMPLATE_SPACE, __version__
from brainsr.base.display import mask_centre, show_slice
from brainsr.io import atomic_path, atomic_savefig, atomic_write_json
from brainsr.paths import bids, label_ok

if TYPE_CHECKING:
    from brainsr.preprocess.layout import PrepLayout

__all__ = ["UpsampleError", "UpsampleResult", "output_names", "resolve_model", "upsample_scans"]

log = logging.getLogger("brainsr")


class UpsampleError(ValueError):
    """A problem with the request itself (model, sequences, output folder); the message says which."""


@dataclass
class UpsampleResult:
    """The files written (by kind) and the seconds each step took."""

    outputs: dict[str, Path]
    seconds: dict[str, float] = field(default_factory=dict)


def resolve_model(model: str | Path, results_dir: str | Path = "results") -> Path:
    """A model file, or an experiment name of a workflow run: ``<results_dir>/superres/models/<name>/model.pt``."""
    path = Path(model)
    if path.is_file():
        return path
    candidate = Path(results_dir) / "superres" / "models" / str(model) / "model.pt"
    if candidate.is_file():
        return candidate
    raise UpsampleError(
        f"--model {model}: neither a model file nor an experiment trained under {results_dir} ({candidate} not found)"
    )


def output_names(subject: str, method: str, sequences: list[str]) -> dict[str, str]:
    """BIDS-derivatives file names of the outputs, by kind (``template:<seq>``, ``native:<seq>``, ...)."""

    def name(suffix: str, extension: str = ".nii.gz", **entities: str) -> str:
        return Path(bids("", subject=subject, suffix=suffix, extension=extension, **entities)).name

    names = {}
    for q in sequences:
        for kind, space in (("template", TEMPLATE_SPACE), ("native", None)):
            names[f"{kind}:{q}"] = name(q, space=space, desc=method)
            names[f"{kind}_json:{q}"] = name(q, ".json", space=space, desc=method)
    names["mask"] = name("mask", space=TEMPLATE_SPACE, desc="brain")
    names["qc"] = name("qc", ".png", desc=method)
    names["record"] = name("upsample", ".json", desc=method)
    return names


def _sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_inputs(images: Mapping[str, str | Path], work: Path) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Each input as a checked NIfTI path (DICOM folders converted with dcm2niix), and what the record keeps of it.

    The record keeps content hashes and allow-listed acquisition parameters only: the file and folder names of
    clinical exports, and DICOM headers, often carry names, IDs or dates.
    """
    from brainsr.base.images import load_scan

    paths, provenance = {}, {}
    for q, given in images.items():
        path, record, hash_key = Path(given), {"Format": "NIfTI"}, "SHA256"
        if path.is_dir():
            from brainsr.dicom import convert_series, dcm2niix_version

            path, acquisition = convert_series(path, work, f"input_{q}")
            record = {"Format": "DICOM", "Converter": f"dcm2niix {dcm2niix_version()}", "Acquisition": acquisition}
            hash_key = "SHA256OfConvertedImage"
        load_scan(path)
        provenance[q] = {**record, hash_key: _sha256(path)}
        paths[q] = str(path)
    return paths, provenance


def _publish(staging: Path, out_dir: Path, names: Mapping[str, str]) -> dict[str, Path]:
    """Copy the finished outputs into ``out_dir`` (each file atomically); on failure remove what was created."""
    created = next((p for p in [out_dir, *out_dir.parents] if p.parent.exists()), out_dir)
    created = None if created.exists() else created
    outputs: dict[str, Path] = {}
    try:
        for kind, name in names.items():
            with atomic_path(out_dir / name) as tmp:
                shutil.copyfile(staging / name, tmp)
            outputs[kind] = out_dir / name
    except BaseException:
        for path in outputs.values():
            path.unlink(missing_ok=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    return outputs


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"brainsr": __version__}
    for name in ("torch", "antspyx", "nibabel", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _template(preprocess: Mapping[str, Any], work: Path, grid: Mapping[str, Any]) -> tuple[str, str]:
    """The template brain and mask on the analysis grid, checked against the grid the model was trained on."""
    from brainsr.preprocess.template import load_template, write_grid

    tpl, msk = load_template(preprocess["template"]["image"] or "", preprocess["template"]["mask"] or "")
    image, mask = str(work / "template_T1w.nii.gz"), str(work / "template_mask.nii.gz")
    write_grid(image, mask, tpl, msk, float(preprocess["grid_mm"]), float(preprocess["crop_margin_mm"]))
    built = nib.load(image)
    shape, affine = grid.get("grid_shape"), grid.get("grid_affine")
    if shape is not None and (list(built.shape) != list(shape) or not np.allclose(built.affine, affine, atol=1e-3)):
        raise UpsampleError(
            f"the model was trained on a {list(shape)} grid, but grid_mm={preprocess['grid_mm']} and "
            f"crop_margin_mm={preprocess['crop_margin_mm']} give {list(built.shape)}: pass the training run's "
            "config with --configfile (e.g. workflow/presets/tiny.yaml for a tiny-preset model)"
        )
    return image, mask


def _qc_figure(inputs: Mapping[str, str], outputs: Mapping[str, str], mask: str, path: Path, title: str) -> None:
    """Input (preprocessed clinical) and output of each sequence: axial, coronal and sagittal slices."""
    from matplotlib.figure import Figure

    brain = np.asarray(nib.load(mask).dataobj) > 0
    centre = mask_centre(brain)
    seqs = list(inputs)
    views = ("axial", "coronal", "sagittal")
    fig = Figure(figsize=(2.2 * 2 * len(views), 2.4 * len(seqs)), constrained_layout=True)
    axes = fig.subplots(len(seqs), 2 * len(views), squeeze=False)
    for row, seq in enumerate(seqs):
        for col, (label, path_img) in enumerate((("input", inputs[seq]), ("upsampled", outputs[seq]))):
            img = nib.load(path_img)
            zooms = np.array(img.header.get_zooms()[:3])
            for v, view in enumerate(views):
                ax = axes[row, col * len(views) + v]
                show_slice(ax, np.asarray(img.dataobj), centre, view, zooms, cmap="gray", vmin=0, vmax=1)
                if v == 0:
                    ax.set_ylabel(seq)
                if row == 0:
                    ax.set_title(f"{label}, {view}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    atomic_savefig(fig, path, dpi=110)


class _Steps:
    """The seconds of each step, kept and handed to ``step_done`` as each step ends."""

    def __init__(self, step_done: Callable[[str, float], None] | None) -> None:
        self.seconds: dict[str, float] = {}
        self.step_done = step_done

    def record(self, step: str, sec: float) -> None:
        self.seconds[step] = sec
        if self.step_done is not None:
            self.step_done(step, sec)

    def done(self, step: str, start: float) -> None:
        """Record the step that began at ``start`` (``time.perf_counter``) and log its seconds."""
        self.record(step, time.perf_counter() - start)
        log.info("%s: %.1f s", step, self.seconds[step])


@dataclass
class _Plan:
    """What the checks settle: the model's record, its sequences and prep, the checked inputs, the method name
    and the intensity scaling of its training data."""

    model_path: Path
    meta: dict[str, Any]
    seqs: list[str]
    images: dict[str, str]
    provenance: dict[str, dict[str, Any]]
    prep: str
    key: str
    interpolation: str
    method: str
    intensity: dict[str, Any]

    @property
    def data(self) -> dict[str, Any]:
        """The model file's data record (prep, sequences, grid, intensity scaling)."""
        return self.meta["data"]


def _scaling_words(intensity: Mapping[str, Any]) -> str:
    """The intensity scaling in words, for the provenance record."""
    core = f"core {float(intensity['rescale_core_mm']):g} mm"
    if intensity["rescale"] == "percentile":
        return f"percentiles {list(intensity['rescale_percentiles'])}, {core}"
    levels = ", ".join(f"{q} {v:g}" for q, v in intensity["rescale_wm_level"].items())
    return f"white matter at {levels}, {core}"


def _check_request(
    images: Mapping[str, str | Path], model_path: Path, preprocess: Mapping[str, Any], work: Path
) -> _Plan:
    """Read the model file and every input it takes before any work; one clear message per problem."""
    from brainsr.models.files import load_model_file
    from brainsr.preprocess.layout import intensity_settings
    from brainsr.preprocess.pipeline import prep_spec

    meta = load_model_file(model_path).meta
    data = meta["data"]
    seqs = list(data.get("sequences") or [])
    missing = [q for q in seqs if q not in images]
    if missing:
        raise UpsampleError(
            f"{model_path}: the model takes {', '.join(seqs)}; missing {', '.join(missing)} "
            f"(give --{missing[0].lower()})"
        )
    extra = sorted(set(images) - set(seqs))
    if extra:
        log.warning("the model takes %s only: %s not used", ", ".join(seqs), ", ".join(extra))
    # DICOM folders converted, every input read and checked: one clear message per unusable input, before any work
    checked, provenance = _read_inputs({q: images[q] for q in seqs}, work)
    prep = str(data.get("prep") or "affinelinear")
    key, interpolation = prep_spec(prep, preprocess)
    method = str(data.get("experiment") or meta["model"]["name"]) or "model"
    method = "".join(ch for ch in method if ch.isalnum()) or "model"
    intensity = intensity_settings(preprocess, data.get("intensity"))  # as the model's training data had it
    return _Plan(model_path, meta, seqs, checked, provenance, prep, key, interpolation, method, intensity)


def _preprocess_clinical(
    plan: _Plan, preprocess: Mapping[str, Any], subject: str, work: Path, mask_out: Path, steps: _Steps
) -> tuple[PrepLayout, list[str]]:
    """The template grid, then the session's preprocessing as the model's training data had it, into ``work``;
    the brain mask on the analysis grid is copied to ``mask_out``. Returns the layout and the transform chain."""
    from brainsr.preprocess.chain import preprocess_session, session_keys
    from brainsr.preprocess.layout import PrepLayout

    t0 = time.perf_counter()
    template, template_mask = _template(preprocess, work, plan.data)
    steps.done("template", t0)

    seqs, prep = plan.seqs, plan.prep
    layout, ids = PrepLayout(str(work / "preprocess"), TEMPLATE_SPACE, tuple(seqs)), (subject, "clinical")
    chain = session_keys([prep], preprocess)
    timings = preprocess_session(
        {q: str(plan.images[q]) for q in seqs},
        layout=layout,
        subject=subject,
        session="clinical",
        preps=[prep],
        pre={**preprocess, **plan.intensity},
        template=template,
        template_mask=template_mask,
        qc=False,
    )
    for step, sec in timings.items():  # logged by the chain as each ran
        steps.record(step, sec)
    shutil.copyfile(layout.image_mask(*ids, prep), mask_out)
    return layout, chain


def _upsample_prepped(
    plan: _Plan,
    layout: PrepLayout,
    subject: str,
    staging: Path,
    names: Mapping[str, str],
    steps: _Steps,
    *,
    device: str,
    batch_size: int,
    precision: str,
) -> dict[str, str]:
    """The preprocessed scans through the model into ``staging``, on the template grid and mapped back onto each
    clinical grid. Returns the preprocessed (model input) images by sequence."""
    from brainsr.infer.scans import infer_scan
    from brainsr.preprocess.pipeline import native_chain

    seqs, ids = plan.seqs, (subject, "clinical")
    brains = {q: layout.brain(*ids, q) for q in seqs}
    to_t1w = {q: layout.seq_xfm(*ids, q) for q in seqs[1:]}
    prepped = {q: layout.image(*ids, plan.prep, q) for q in seqs}
    inverse = layout.tpl_xfm(*ids, plan.key, inverse=True)

    t0 = time.perf_counter()
    native = {}
    for q in seqs:
        transforms, invert = native_chain(inverse, to_t1w.get(q))
        native[q] = {"reference": brains[q], "transforms": transforms, "invert": invert}
    infer_scan(
        images=prepped,
        out={q: str(staging / names[f"template:{q}"]) for q in seqs},
        model=str(plan.model_path),
        mask=str(staging / names["mask"]),
        native=native,
        out_native={q: str(staging / names[f"native:{q}"]) for q in seqs},
        device=device,
        batch_size=batch_size,
        precision=precision,
    )
    steps.done("upsample and map back to the clinical grids", t0)
    return prepped


def _write_record(
    plan: _Plan, preprocess: Mapping[str, Any], chain: list[str], seconds: Mapping[str, float], path: Path
) -> None:
    """The JSON record of the run: model, inputs (by content hash), steps, settings, software, seconds."""
    meta, data = plan.meta, plan.data
    record = {
        "GeneratedBy": [{"Name": "brainsr upsample", "Version": __version__}],
        "Model": {
            "File": plan.model_path.name,
            "SHA256": _sha256(plan.model_path),
            "Architecture": meta["model"]["name"],
            "Experiment": data.get("experiment"),
            "TrainedWithBrainsr": meta.get("brainsr_version"),
            "Sequences": plan.seqs,
            "Prep": plan.prep,
        },
        # inputs by content hash (+ allow-listed DICOM acquisition fields): file names of clinical exports,
        # and DICOM headers, often carry names or IDs
        "Inputs": plan.provenance,
        "Steps": [
            f"bias correction ({preprocess['bias']['engine']}), brain extraction ({preprocess['brain']['engine']})",
            f"registration to {TEMPLATE_SPACE} ({' then '.join(chain)})",
            f"resampling ({plan.interpolation}) onto the {preprocess['grid_mm']:g} mm analysis grid, "
            f"scaled to [0, 1] ({_scaling_words(plan.intensity)})",
            "upsampling with the model, mapped back onto each clinical grid (linear)",
        ],
        "Preprocessing": {
            k: preprocess[k] for k in ("grid_mm", "iso_mm", "level_mm", "session_level_mm", "bias", "syn_iterations")
        },
        "Software": _versions(),
        "Seconds": {k: round(v, 2) for k, v in seconds.items()},
    }
    atomic_write_json(record, path, sort_keys=False, default=str)


def upsample_scans(
    images: Mapping[str, str | Path],
    model: str | Path,
    out_dir: str | Path,
    *,
    preprocess: Mapping[str, Any],
    subject: str = "01",
    device: str = "auto",
    batch_size: int = 16,
    precision: str = "auto",
    step_done: Callable[[str, float], None] | None = None,
) -> UpsampleResult:
    """Preprocess one clinical scan set as the model's training data was, upsample it, write the outputs.

    ``images``: per sequence (``T1w``, ``T2w``, ``FLAIR``; every sequence the model takes) a NIfTI file or a
    folder holding one DICOM series (converted with dcm2niix, :mod:`brainsr.dicom`).
    ``preprocess``: the ``preprocess`` section of the validated config (template, grids, bias, brain extraction,
    variants, rescaling) of the training run's config; the model file supplies the prep, the sequences, the grid
    and the intensity scaling.
    """
    if not label_ok(subject):
        raise UpsampleError(f"--subject {subject!r}: a BIDS label has only letters and digits")
    steps = _Steps(step_done)

    with contextlib.ExitStack() as stack:  # the work folder is removed however the run ends
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="brainsr-upsample-")))
        t0 = time.perf_counter()
        plan = _check_request(images, Path(model), preprocess, work)
        steps.done("check", t0)

        names = output_names(subject, plan.method, plan.seqs)
        staging = work / "staging"  # published into --out only when every step succeeded
        staging.mkdir()
        layout, chain = _preprocess_clinical(plan, preprocess, subject, work, staging / names["mask"], steps)
        prepped = _upsample_prepped(
            plan, layout, subject, staging, names, steps, device=device, batch_size=batch_size, precision=precision
        )

        t0 = time.perf_counter()
        _qc_figure(
            prepped,
            {q: str(staging / names[f"template:{q}"]) for q in plan.seqs},
            str(staging / names["mask"]),
            staging / names["qc"],
            f"sub-{subject}: {plan.method} ({plan.prep}); input = preprocessed clinical scan",
        )
        steps.done("qc figure", t0)

        _write_record(plan, preprocess, chain, steps.seconds, staging / names["record"])
        return UpsampleResult(_publish(staging, Path(out_dir), names), steps.seconds)
