"""BIDS(-derivatives) path construction and parsing.

:func:`bids` is the single helper every part of the workflow uses to name files. It is pure string
formatting (it never touches the disk), so Snakemake rules can pass wildcard placeholders such as
``"{subject}"`` for any label.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePath

__all__ = ["ENTITY_ORDER", "bids", "label_ok", "parse_bids_name", "sidecar"]

#: Entities in the order they appear in a file name: BIDS raw entities, then derivative entities.
ENTITY_ORDER: tuple[str, ...] = (
    "sub",
    "ses",
    "sample",
    "task",
    "acq",
    "ce",
    "trc",
    "stain",
    "rec",
    "dir",
    "run",
    "mod",
    "echo",
    "flip",
    "inv",
    "mt",
    "part",
    "recording",
    "chunk",
    "space",
    "cohort",
    "res",
    "den",
    "label",
    "from",
    "to",
    "mode",
    "hemi",
    "model",
    "desc",
)

# Keyword names accepted by bids() for entities that are Python keywords.
_KEYWORD_ALIASES = {"from_": "from"}
# Entities given as explicit arguments of bids(); they may not be passed as **entities.
_EXPLICIT = {"sub": "subject", "ses": "session"}

_LABEL_RE = re.compile(r"[a-zA-Z0-9]+")
# A Snakemake wildcard / str.format placeholder, including escaped "{{name}}" and "{name,regex}" forms.
_PLACEHOLDER_RE = re.compile(r"\{+[^{}]*\}+")


def label_ok(label: str) -> bool:
    """Return True if *label* is a valid BIDS label (one or more ASCII letters or digits)."""
    return isinstance(label, str) and _LABEL_RE.fullmatch(label) is not None


def _has_placeholder(value: str) -> bool:
    return _PLACEHOLDER_RE.search(value) is not None


def _literal_ok(value: str) -> bool:
    """A label is acceptable if it is a BIDS label, or placeholders with only label characters around."""
    if not _has_placeholder(value):
        return label_ok(value)
    rest = _PLACEHOLDER_RE.sub("", value)
    return rest == "" or label_ok(rest)


def _check(entity: str, value: object) -> str:
    """Convert *value* to a string label, raising ValueError if it is not a valid BIDS label."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"BIDS entity {entity!r}: expected a string label, got {value!r}")
    text = str(value)
    if not _literal_ok(text):
        raise ValueError(f"BIDS entity {entity!r}: invalid label {text!r} (labels may only contain letters and digits)")
    return text


def _check_extension(extension: str) -> str:
    if not isinstance(extension, str):
        raise ValueError(f"extension: expected a string, got {extension!r}")
    if extension == "" or _has_placeholder(extension):
        return extension
    if not re.fullmatch(r"(\.[a-zA-Z0-9]+)+", extension):
        raise ValueError(f"extension: invalid value {extension!r} (expected e.g. '.nii.gz' or '.tsv')")
    return extension


def bids(
    root: str | os.PathLike,
    *,
    subject: str | None = None,
    session: str | None = None,
    datatype: str | None = None,
    suffix: str,
    extension: str = ".nii.gz",
    include_subject_dir: bool = True,
    include_session_dir: bool = True,
    **entities: str | None,
) -> str:
    """Build a BIDS(-derivatives) path.

    ``root/sub-<subject>/ses-<session>/<datatype>/sub-<subject>_ses-<session>_<entities>_<suffix><extension>``.
    Subject-level files (``session=None``) go in ``root/sub-<subject>/[<datatype>/]``, group-level files
    (``subject=None``) in ``root/[<datatype>/]``. Entities are written in canonical order
    (:data:`ENTITY_ORDER`) whatever the keyword order; ``None`` values are skipped. Use ``from_`` for the
    ``from`` entity. Labels may contain ``{wildcard}`` placeholders, which are kept as they are.

    Raises ValueError for unknown entities and invalid labels, naming the entity and the value.
    """
    values: dict[str, str] = {}
    for key, value in entities.items():
        name = _KEYWORD_ALIASES.get(key, key)
        if name in _EXPLICIT:
            raise ValueError(f"unknown BIDS entity {key!r}: pass {_EXPLICIT[name]}= instead")
        if name not in ENTITY_ORDER:
            raise ValueError(f"unknown BIDS entity {key!r} (known: {', '.join(ENTITY_ORDER)})")
        if name in values:
            raise ValueError(f"BIDS entity {name!r} given twice")
        if value is not None:
            values[name] = _check(name, value)
    if subject is not None:
        values["sub"] = _check("sub", subject)
    if session is not None:
        values["ses"] = _check("ses", session)
    if not isinstance(suffix, str) or not suffix:
        raise ValueError(f"suffix: a non-empty suffix is required, got {suffix!r}")
    if not _literal_ok(suffix):
        raise ValueError(f"suffix: invalid value {suffix!r} (may only contain letters and digits)")
    extension = _check_extension(extension)
    if datatype is not None and not _literal_ok(datatype):
        raise ValueError(f"datatype: invalid value {datatype!r} (may only contain letters and digits)")

    parts = [f"{name}-{values[name]}" for name in ENTITY_ORDER if name in values]
    filename = "_".join([*parts, suffix]) + extension

    dirs: list[str] = [os.fspath(root)]
    if "sub" in values and include_subject_dir:
        dirs.append(f"sub-{values['sub']}")
    if "ses" in values and include_session_dir:
        dirs.append(f"ses-{values['ses']}")
    if datatype is not None:
        dirs.append(datatype)
    return os.path.join(*dirs, filename)


def parse_bids_name(path: str | os.PathLike) -> dict[str, str]:
    """Parse a BIDS file name back into the keyword arguments of :func:`bids`.

    Returns ``subject``/``session`` (when present), the other entities under their short names (``from``
    for the from-entity), ``suffix``, ``extension`` and, when the file sits in a datatype folder directly
    below its subject or session folder, ``datatype``. So ``bids(root, **parse_bids_name(p))`` rebuilds
    ``p`` for files inside ``root``. Raises ValueError for malformed names and unknown entities.
    """
    pure = PurePath(os.fspath(path))
    name = pure.name
    stem, dot, ext = name.partition(".")
    extension = dot + ext
    pieces = stem.split("_")
    if not stem or not pieces[-1]:
        raise ValueError(f"{name!r}: not a BIDS file name (no suffix)")
    suffix = pieces[-1]
    if "-" in suffix or not label_ok(suffix):
        raise ValueError(f"{name!r}: invalid suffix {suffix!r}")
    result: dict[str, str] = {}
    for piece in pieces[:-1]:
        key, sep, value = piece.partition("-")
        if not sep:
            raise ValueError(f"{name!r}: {piece!r} is not a key-value entity")
        if key not in ENTITY_ORDER:
            raise ValueError(f"{name!r}: unknown BIDS entity {key!r}")
        if not label_ok(value):
            raise ValueError(f"{name!r}: entity {key!r} has invalid label {value!r}")
        out_key = {"sub": "subject", "ses": "session"}.get(key, key)
        if out_key in result:
            raise ValueError(f"{name!r}: entity {key!r} appears twice")
        result[out_key] = value
    result["suffix"] = suffix
    result["extension"] = extension

    # A datatype folder sits directly below ses-<session> (or sub-<subject> when there is no session).
    parents = pure.parent.parts
    if len(parents) >= 2:
        owner = parents[-2]
        expected = None
        if "session" in result:
            expected = f"ses-{result['session']}"
        elif "subject" in result:
            expected = f"sub-{result['subject']}"
        if expected is not None and owner == expected and label_ok(parents[-1]):
            result["datatype"] = parents[-1]
    return result


def sidecar(image: str | os.PathLike) -> str:
    """The JSON sidecar of a NIfTI image (``..._T1w.nii.gz`` -> ``..._T1w.json``); placeholders pass through."""
    return str(image).removesuffix(".gz").removesuffix(".nii") + ".json"
