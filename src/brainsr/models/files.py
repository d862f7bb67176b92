"""Self-describing model files: architecture, preprocessing and intensity scaling travel with the weights.

A model file records the generator's class name and constructor arguments, the critic's, the preprocessing
variant ("prep") and sequences it was trained on, the slicing axis, padding and input mode, the intensity
scaling of its inputs, and the brainsr version. :func:`load_model_file` rebuilds the modules from those records
and loads the weights strictly, so a file whose weights do not fit its architecture, or that was trained for
another preprocessing than the caller expects, fails loudly instead of running random or wrong weights.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brainsr import __version__
from brainsr.io import atomic_path
from brainsr.models import build_model

__all__ = ["FORMAT", "FORMAT_VERSION", "LoadedModel", "ModelFileError", "load_model_file", "save_model_file"]

FORMAT = "brainsr-model"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file that cannot be used; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


@dataclass
class LoadedModel:
    """A generator (eval mode), its critic (or None) and the file's metadata."""

    generator: nn.Module
    critic: nn.Module | None
    meta: dict[str, Any]


def save_model_file(
    path: str | os.PathLike,
    *,
    generator: nn.Module,
    model_name: str,
    model_kwargs: Mapping[str, Any],
    data: Mapping[str, Any],
    critic: nn.Module | None = None,
    critic_kwargs: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
) -> Path:
    """Write the model file atomically (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "brainsr_version": __version__,
        "model": {"name": model_name, "kwargs": dict(model_kwargs)},
        "state_dict": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
        "critic": None if critic is None else {"name": "critic", "kwargs": dict(critic_kwargs or {})},
        "critic_state_dict": None if critic is None else {k: v.detach().cpu() for k, v in critic.state_dict().items()},
        "data": dict(data),
        "training": dict(training or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def _rebuild(path: str | os.PathLike, record: Mapping[str, Any], state: Mapping[str, Any], what: str) -> nn.Module:
    try:
        module = build_model(record["name"], **record["kwargs"])
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelFileError(path, f"cannot build the {what} recorded in the file ({exc})") from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        summary = str(exc).splitlines()
        detail = "; ".join(line.strip() for line in summary[1:4]) or summary[0]
        raise ModelFileError(
            path,
            f"the weights do not fit the recorded {what} architecture {record['name']}({record['kwargs']}): {detail}",
        ) from None
    return module.eval()


def load_model_file(
    path: str | os.PathLike,
    *,
    expect: Mapping[str, Any] | None = None,
    map_location: str | torch.device = "cpu",
) -> LoadedModel:
    """Load a model file; ``expect`` maps ``data`` keys (e.g. ``prep``, ``sequences``) to required values."""
    if not Path(path).is_file():
        raise ModelFileError(path, "model file not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        raise ModelFileError(path, f"not a readable brainsr model file ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(path, f"not a {FORMAT} file (a raw state_dict or another program's checkpoint?)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            path, f"model file format {payload.get('format_version')} is not supported (expected {FORMAT_VERSION})"
        )
    data = payload.get("data", {})
    for key, wanted in (expect or {}).items():
        have = data.get(key)
        if isinstance(wanted, (list, tuple)):
            wanted, have = list(wanted), list(have) if have is not None else None
        if have != wanted:
            raise ModelFileError(path, f"model was trained with {key}={have!r}, but {wanted!r} is required here")
    generator = _rebuild(path, payload["model"], payload["state_dict"], "generator")
    critic = None
    if payload.get("critic") is not None:
        critic = _rebuild(path, payload["critic"], payload["critic_state_dict"], "critic")
    meta = {k: payload[k] for k in ("model", "critic", "data", "training", "brainsr_version", "format_version")}
    return LoadedModel(generator, critic, meta)
