"""One experiment trained from the workflow's spec (``brainsr train --spec-json``): subjects' files and settings."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["gated", "train_from_spec"]


def _pairs(entries: list[dict[str, Any]], what: str) -> list:
    """The scan pairs of the spec's ``train`` or ``validation`` subjects."""
    from brainsr.data import load_pair

    if not entries:
        raise ValueError(f"the training spec has no {what} subjects")
    return [load_pair(e["subject"], e["clinical"], e["research"]) for e in entries]


def gated(spec: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The spec without the train and validation subjects that the preprocessing QC gate keeps out
    (``spec["qc_gate"]``, :func:`brainsr.preprocess.gate.failed_subjects`), and those subjects."""
    from brainsr.preprocess.gate import failed_subjects

    failed = set(failed_subjects(spec.get("qc_gate")))
    out = {**spec, **{k: [e for e in spec[k] if e["subject"] not in failed] for k in ("train", "validation")}}
    return out, sorted(failed & {e["subject"] for e in spec["train"] + spec["validation"]})


def train_from_spec(
    spec: dict[str, Any],
    *,
    out_model: str,
    out_history: str,
    work_dir: str,
    device: str,
    tensorboard: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Train one experiment from a spec: ``settings``, ``sequences``, ``prep``, ``train``/``validation`` subjects
    (``{"subject", "clinical": [paths], "research": [paths]}``) and the intensity scaling to record."""
    import torch

    from brainsr.train.settings import TrainSettings
    from brainsr.train.trainer import train_experiment

    spec, left_out = gated(spec)
    if left_out:
        logging.getLogger("brainsr.train").warning("left out by the preprocessing QC gate: %s", ", ".join(left_out))
    settings = TrainSettings.from_mapping(spec["settings"])
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    train, validation = _pairs(spec["train"], "train"), _pairs(spec["validation"], "validation")
    inputs = [p for e in spec["train"] + spec["validation"] for p in e["clinical"] + e["research"]]
    data_meta = {
        "experiment": spec.get("experiment", ""),
        "prep": settings.prep,
        "sequences": list(spec["sequences"]),
        "grid_shape": list(train[0].x.shape[1:]),
        "grid_affine": train[0].affine.tolist(),
        "intensity": {"range": [0.0, 1.0], **spec.get("intensity", {})},
        "train_subjects": [e["subject"] for e in spec["train"]],
        "validation_subjects": [e["subject"] for e in spec["validation"]],
        "qc_gate_excluded": left_out,
    }
    return train_experiment(
        settings,
        train,
        validation,
        out_model=out_model,
        out_history=out_history,
        work_dir=work_dir,
        data_meta=data_meta,
        inputs=inputs,
        device=device,
        tensorboard=tensorboard,
        progress=progress,
    )
