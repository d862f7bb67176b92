"""Argument types of the ``brainsr`` command line: a JSON object option, ``KEY=PATH`` items (standard library only)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["json_object", "key_path", "key_value_pairs"]


def json_object(text: str) -> dict:
    """A JSON object given inline or as ``@file`` (the ``--*-json`` options)."""
    try:
        value = json.loads(Path(text[1:]).read_text() if text.startswith("@") else text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read the JSON file: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def key_path(text: str) -> tuple[str, str]:
    """One ``KEY=PATH`` item, checked while parsing (a malformed one is a usage error)."""
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected KEY=PATH, got {text!r}")
    return key, value


def key_value_pairs(items: list[str] | None, option: str) -> dict[str, str]:
    """Repeated ``KEY=VALUE`` items as a dict; a malformed item raises ``ValueError`` naming its option."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{option} expects SEQUENCE=PATH, got {item!r}")
        out[key] = value
    return out
