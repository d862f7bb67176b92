"""Group table of the trained experiments: settings next to the best validation metrics (paper Table S1)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from brainsr.train.settings import TrainSettings

__all__ = ["SETTING_COLUMNS", "validation_table"]

SETTING_COLUMNS = ("model", "prep", "input", "channels", "loss", "critic", "critic_lambda", "filters", "epochs")


def validation_table(summaries: Sequence[str | Path], experiments: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per experiment: its settings, parameter count, best epoch and validation metrics of the model
    and of its input (the interpolated clinical scan). ``summaries``: ``<experiment>/model.json`` files."""
    rows = []
    for path in summaries:
        name = Path(path).parent.name
        if name not in experiments:
            raise ValueError(f"{path}: experiment {name!r} is not in the configuration")
        settings = TrainSettings.from_mapping(experiments[name]).as_dict()
        summary = json.loads(Path(path).read_text())
        row = {"experiment": name, **{k: settings[k] for k in SETTING_COLUMNS}}
        row.update({k: v for k, v in summary.items() if k != "settings"})
        rows.append(row)
    return pd.DataFrame(rows)
