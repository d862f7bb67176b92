"""Loading, merging and validating the workflow configuration.

The JSON Schema exists once, as package data: ``brainsr/data/config.schema.yaml`` (``SCHEMA_PATH``), so a
non-editable install has it too; the workflow validates its configuration with :func:`validate_config`
(``workflow/rules/common.smk``), hence against this same file. Validation fills in the schema's defaults
exactly like ``snakemake.utils.validate(config, schema, set_default=True)`` (nested objects included) and turns
schema violations into a :class:`ConfigError` naming the offending key path.
"""

from __future__ import annotations

import copy
import difflib
import functools
import math
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

__all__ = [
    "SCHEMA_PATH",
    "ConfigError",
    "deep_merge",
    "load_config",
    "load_schema",
    "validate_config",
]

#: JSON Schema of the workflow configuration: the package data file, the only copy.
SCHEMA_PATH: Path = Path(str(resources.files("brainsr").joinpath("data", "config.schema.yaml")))

#: Tolerance on ``split.fractions`` summing to 1.
_FRACTION_TOLERANCE = 1e-6


class ConfigError(ValueError):
    """Invalid workflow configuration; ``problems`` lists one message per offending key."""

    def __init__(self, problems: str | Iterable[str]) -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = f"{len(self.problems)} configuration errors:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


@functools.cache
def _schema_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def load_schema(path: str | Path | None = None) -> dict[str, Any]:
    """Return a fresh copy of the configuration schema (``SCHEMA_PATH`` unless ``path`` is given)."""
    schema = yaml.safe_load(_schema_text(Path(path) if path is not None else SCHEMA_PATH))
    if not isinstance(schema, dict):
        raise ConfigError(f"schema {path or SCHEMA_PATH} is not a YAML mapping")
    return schema


def _set_defaults(validator: Any, properties: dict[str, Any], instance: Any, schema: dict) -> Iterator:
    """``properties`` keyword that first fills missing keys with (copies of) their defaults."""
    if isinstance(instance, dict):
        for name, subschema in properties.items():
            if isinstance(subschema, dict) and "default" in subschema and name not in instance:
                instance[name] = copy.deepcopy(subschema["default"])
    yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema)


_DefaultFillingValidator = validators.extend(Draft202012Validator, {"properties": _set_defaults})


def _key_path(path: Iterable[Any]) -> str:
    """``('simulate', 'control_months', 1)`` -> ``'simulate.control_months[1]'``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _describe(error: ValidationError) -> str:
    """One-line message for a schema violation, naming the offending key path."""
    path = _key_path(error.absolute_path)
    where = f"config key '{path}'" if path else "config"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        unexpected = [k for k in error.instance if k not in allowed]
        parts = []
        for key in unexpected:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            parts.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        noun = "key" if len(unexpected) == 1 else "keys"
        hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
        return f"{where}: unexpected {noun} {', '.join(parts)}{hint}"
    return f"{where}: {error.message}"


def _get(config: Mapping[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = value[part]
    return value


def _semantic_problems(config: Mapping[str, Any]) -> list[str]:
    """Cross-key checks that the schema cannot express (config is schema-valid here)."""
    problems = []
    counts = _get(config, "simulate.split_counts")
    n_patients = _get(config, "simulate.n_patients")
    if sum(counts.values()) != n_patients:
        terms = " + ".join(f"{name} {n}" for name, n in counts.items())
        problems.append(
            f"config keys 'simulate.split_counts' and 'simulate.n_patients' disagree: split counts sum to "
            f"{sum(counts.values())} ({terms}) but n_patients is {n_patients}"
        )
    fractions = _get(config, "split.fractions")
    total = math.fsum(fractions.values())
    if abs(total - 1.0) > _FRACTION_TOLERANCE:
        terms = " + ".join(f"{name} {f:g}" for name, f in fractions.items())
        problems.append(f"config key 'split.fractions': fractions sum to {total:g} ({terms}), not 1")
    low, high = _get(config, "simulate.days_between_sessions")
    if low > high:
        problems.append(f"config key 'simulate.days_between_sessions': minimum {low} is greater than maximum {high}")
    return problems + _preprocess_problems(config["preprocess"])


def _preprocess_problems(pre: Mapping[str, Any]) -> list[str]:
    """Cross-key checks of the preprocess section: variant names, primary prep, percentiles, template files."""
    problems = []
    unknown = [v for v in pre["build_variants"] if v not in pre["variants"]]
    if unknown:
        problems.append(
            f"config key 'preprocess.build_variants': {', '.join(map(repr, unknown))} not defined in "
            f"'preprocess.variants' (defined: {', '.join(pre['variants'])})"
        )
    preps = [a for a in pre["alignments"] if a == "warp"] + [
        f"{a}{v}" for a in pre["alignments"] if a != "warp" for v in pre["build_variants"]
    ]
    if pre["primary"] not in preps:
        problems.append(f"config key 'preprocess.primary': {pre['primary']!r} is not built (built: {', '.join(preps)})")
    low, high = pre["rescale_percentiles"]
    if low >= high:
        problems.append(f"config key 'preprocess.rescale_percentiles': {low} is not below {high}")
    if bool(pre["template"]["image"]) != bool(pre["template"]["mask"]):
        problems.append("config key 'preprocess.template': give both image and mask, or neither (nilearn MNI152)")
    return problems


def validate_config(config: Mapping[str, Any], schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return a validated deep copy of ``config`` with schema defaults filled in.

    Raises :class:`ConfigError` listing every offending key path (schema violations first; cross-key
    checks such as ``simulate.split_counts`` summing to ``simulate.n_patients`` only once the schema
    is satisfied).
    """
    checked = copy.deepcopy(dict(config)) if isinstance(config, Mapping) else copy.deepcopy(config)
    validator = _DefaultFillingValidator(dict(schema) if schema is not None else load_schema())
    errors = sorted(validator.iter_errors(checked), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        raise ConfigError(_describe(e) for e in errors)
    problems = _semantic_problems(checked)
    if problems:
        raise ConfigError(problems)
    return checked


def deep_merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``b`` over ``a`` into a new dict: nested mappings merge recursively, anything else in
    ``b`` (lists included) replaces the value in ``a``. Neither input is modified."""
    merged = copy.deepcopy(dict(a))
    for key, value in b.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a YAML mapping, not {type(data).__name__}")
    return data


def load_config(*paths: str | Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Load YAML config files in order, deep-merge them (later wins, like Snakemake's ``--configfile``),
    merge ``overrides`` on top and return the validated config with defaults filled in."""
    config: dict[str, Any] = {}
    for path in paths:
        config = deep_merge(config, _read_yaml(Path(path)))
    if overrides:
        config = deep_merge(config, overrides)
    return validate_config(config)
