"""One experiment trained from the workflow's spec (``brainsr train --spec-json``): subjects' files and settings."""

from __future__ import annotations

from typing import Any

__all__ = ["train_from_spec"]


def _pairs(entries: list[dict[str, Any]], what: str) -> list:
    """The scan pairs of the spec's ``train`` or ``validation`` subjects."""
    from brainsr.data import load_pair

    if not entries:
        raise ValueError(f"the training spec has no {what} subjects")
    return [load_pair(e["subject"], e["clinical"], e["research"]) for e in entries]


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
        "intensity": {
            "range": [0.0, 1.0],
            "rescale_percentiles": spec.get("rescale_percentiles"),
            "rescale_core_mm": spec.get("rescale_core_mm"),
        },
        "train_subjects": [e["subject"] for e in spec["train"]],
        "validation_subjects": [e["subject"] for e in spec["validation"]],
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
