"""The frozen subject split (``splits.tsv``) and the cohort record that guards it (``splits.json``).

The split is frozen on the first run so that new data never retrains a model (README "Adding subjects"). It is
planned while the workflow is parsed and written only when a run starts (Snakemake's ``onstart``), so a dry run,
``--lint``, ``--report`` or a cluster job's re-parse writes nothing. Next to it, ``splits.json`` records the
settings that change a subject's images (for a synthetic cohort: seed, grids, voxel sizes, protocols); a run whose
settings differ stops instead of reusing a split drawn for other images (for instance after a preset switch in
the same output folder). The number of subjects is not recorded: growing the cohort is a feature.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from brainsr.bids import SPLITS, BIDSInputError
from brainsr.io import atomic_write_text, atomic_write_tsv

__all__ = ["SplitPlan", "SplitSettingsError", "freeze_splits", "plan_splits", "record_path"]

#: Key of ``splits.json`` holding each frozen subject's own settings (compared only where both records list it).
SUBJECT_KEY = "subjects"


class SplitSettingsError(BIDSInputError):
    """The frozen split belongs to a cohort made with other settings; the message names the file and the ways out."""


def record_path(split_file: str | Path) -> Path:
    """``splits.json`` beside ``splits.tsv`` (a BIDS-style sidecar)."""
    return Path(split_file).with_suffix(".json")


@dataclass(frozen=True)
class SplitPlan:
    """The split to use now, the notes on it, and what the frozen files must hold (written by :meth:`write`)."""

    path: Path
    split: dict[str, str]
    notes: tuple[str, ...]
    table: dict[str, str]
    record: dict[str, Any] | None
    stale: bool

    def write(self) -> None:
        """Write ``splits.tsv`` and ``splits.json`` if their content changes (called when a run starts)."""
        if not self.stale:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_tsv(pd.DataFrame({"subject": list(self.table), "split": list(self.table.values())}), self.path)
        if self.record is not None:
            atomic_write_text(json.dumps(self.record, indent=2, sort_keys=True) + "\n", record_path(self.path))


def _read_table(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if list(table.columns) != ["subject", "split"]:
        raise BIDSInputError(f"{path}: expected the columns 'subject' and 'split', got {list(table.columns)}")
    bad = table.loc[~table["split"].isin(SPLITS), "subject"].tolist()
    if bad:
        raise BIDSInputError(f"{path}: invalid split for {', '.join(bad)} (expected one of {', '.join(SPLITS)})")
    return dict(zip(table["subject"], table["split"], strict=True))


def _read_record(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BIDSInputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise BIDSInputError(f"{path}: expected a JSON object")
    return record


def _conflicts(frozen: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Human-readable differences; per-subject settings are compared only for subjects in both records."""
    out = []
    for key in sorted((set(frozen) | set(current)) - {SUBJECT_KEY}):
        if frozen.get(key) != current.get(key):
            out.append(f"{key} {json.dumps(frozen.get(key))} (frozen) vs {json.dumps(current.get(key))} (now)")
    old, new = frozen.get(SUBJECT_KEY) or {}, current.get(SUBJECT_KEY) or {}
    out += [
        f"sub-{s} {json.dumps(old[s])} (frozen) vs {json.dumps(new[s])} (now)"
        for s in sorted(set(old) & set(new))
        if old[s] != new[s]
    ]
    return out


def _check_record(path: Path, frozen: dict[str, Any] | None, current: dict[str, Any] | None) -> None:
    if frozen is None or current is None:
        return
    found = _conflicts(frozen, current)
    if found:
        split_file = path.with_suffix(".tsv")
        raise SplitSettingsError(
            f"{path}: the frozen split {split_file} was drawn for a cohort made with other settings "
            f"({'; '.join(found)}). Reusing it would mix splits of different images. Either run in another "
            f"output folder (--config output_dir=...), or delete {split_file} and {path.name} to draw the split "
            "again (the models are then retrained)."
        )


def _merge(
    current: Mapping[str, str], frozen: Mapping[str, str], declared: set[str], new_split: str, name: str
) -> tuple[dict[str, str], list[str]]:
    """The split of every current subject: frozen ones keep theirs, declared ones win, new ones get *new_split*."""
    first = not frozen
    result: dict[str, str] = {}
    notes: list[str] = []
    for subject, split in current.items():
        if first or subject in declared:
            result[subject] = split
            if subject in frozen and frozen[subject] != split:
                notes.append(f"sub-{subject}: split {frozen[subject]} -> {split} (participants.tsv)")
        elif subject in frozen:
            result[subject] = frozen[subject]
            if frozen[subject] != split:
                notes.append(f"sub-{subject}: kept the frozen split {frozen[subject]} (would now be {split})")
        else:
            result[subject] = new_split
            notes.append(f"sub-{subject}: new subject, not in {name}: {new_split}")
    return result, notes


def _merged_record(frozen: dict[str, Any] | None, current: dict[str, Any] | None) -> dict[str, Any] | None:
    if current is None:
        return frozen
    subjects = {**((frozen or {}).get(SUBJECT_KEY) or {}), **(current.get(SUBJECT_KEY) or {})}
    return {**current, SUBJECT_KEY: dict(sorted(subjects.items()))} if subjects else dict(current)


def plan_splits(
    current: Mapping[str, str],
    path: str | Path,
    declared: Iterable[str] = (),
    new_split: str = "test",
    settings: Mapping[str, Any] | None = None,
) -> SplitPlan:
    """Plan the frozen split without writing anything.

    The first plan takes *current*. Later plans keep the frozen split of every listed subject, except subjects
    in *declared* (split given in participants.tsv: the user's explicit choice wins); subjects not yet listed get
    *new_split* (by default ``test``: new scans are upsampled, the trained models stay). Subjects listed but gone
    from *current* stay in the file. *settings* (JSON-able; per-subject settings under ``"subjects"``) must
    equal the recorded ones, else :class:`SplitSettingsError`.
    """
    path = Path(path)
    if new_split not in SPLITS:
        raise ValueError(f"new_split must be one of {', '.join(SPLITS)}, got {new_split!r}")
    frozen = _read_table(path)
    old_record = _read_record(record_path(path)) if frozen else None
    current_record = json.loads(json.dumps(settings, sort_keys=True)) if settings is not None else None
    _check_record(record_path(path), old_record, current_record)
    result, notes = _merge(current, frozen, set(declared), new_split, path.name)
    table = {**frozen, **result}
    record = _merged_record(old_record, current_record)
    return SplitPlan(path, result, tuple(notes), table, record, table != frozen or record != old_record)


def freeze_splits(
    current: Mapping[str, str],
    path: str | Path,
    declared: Iterable[str] = (),
    new_split: str = "test",
    settings: Mapping[str, Any] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """:func:`plan_splits`, then write the files at once (outside a workflow); returns the split and the notes."""
    plan = plan_splits(current, path, declared, new_split, settings)
    plan.write()
    return plan.split, list(plan.notes)
