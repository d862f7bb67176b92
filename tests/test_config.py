"""Tests of the configuration schema, brainsr.config and the Snakemake profiles."""

from __future__ import annotations

import copy
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from brainsr.config import SCHEMA_PATH, ConfigError, deep_merge, load_config, load_schema, validate_config

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "config.yaml"
PRESETS = sorted((REPO / "workflow" / "presets").glob("*.yaml"))
PACKAGED_SCHEMA = REPO / "src" / "brainsr" / "data" / "config.schema.yaml"


def _default() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_CONFIG.read_text())


def _with(path: str, value: Any) -> dict[str, Any]:
    """Default config with the dotted key ``path`` set to ``value``."""
    cfg = _default()
    *parents, last = path.split(".")
    node = cfg
    for part in parents:
        node = node[part]
    node[last] = value
    return cfg


def _key_paths(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path of the nested mappings in ``node``."""
    paths: list[tuple[str, ...]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            paths.append((*prefix, key))
            paths.extend(_key_paths(value, (*prefix, key)))
    return paths


# --- the schema ------------------------------------------------------------------------------------------


def test_schema_path_is_the_package_data_file() -> None:
    import brainsr

    assert SCHEMA_PATH == Path(str(resources.files("brainsr").joinpath("data", "config.schema.yaml")))
    assert SCHEMA_PATH.is_file()
    assert SCHEMA_PATH.parent.parent == Path(brainsr.__file__).parent
    assert SCHEMA_PATH.resolve() == PACKAGED_SCHEMA.resolve()


def test_one_copy_of_the_schema() -> None:
    """The package's schema is the only one: no copy under workflow/ (or anywhere else in the repository)."""
    found = {
        path.resolve()
        for where in ("workflow", "src", "profiles", "resources", "scripts", "benchmarks")
        for path in (REPO / where).rglob("*schema*")
        if path.is_file() and path.suffix in {".yaml", ".yml", ".json"}
    }
    found |= {path.resolve() for path in REPO.glob("*schema*") if path.is_file()}
    assert found == {PACKAGED_SCHEMA.resolve()}


def test_workflow_validates_with_the_package_schema() -> None:
    """common.smk validates through brainsr.config (hence SCHEMA_PATH) and names no schema file of its own."""
    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    assert "from brainsr.config import" in common
    assert "validate_config(" in common
    smk = [*(REPO / "workflow").rglob("*.smk"), REPO / "Snakefile"]
    for path in smk:
        text = path.read_text()
        assert "schema.yaml" not in text.replace("src/brainsr/data/config.schema.yaml", ""), path
        assert "snakemake.utils import validate" not in text, path


def test_workflow_rejects_a_key_unknown_to_the_package_schema(tmp_path: Path) -> None:
    """A dry run of the real workflow stops at the configuration, naming a key the package's schema lacks."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--dry-run",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--config",
            "not_a_key=1",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert "invalid configuration" in result.stdout + result.stderr
    assert "not_a_key" in result.stdout + result.stderr


def test_schema_is_valid_draft_2020_12() -> None:
    from jsonschema import Draft202012Validator

    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def _object_schemas(schema: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            found.append((where or "<root>", schema))
        for key, value in schema.items():
            if key in ("default", "enum"):
                continue
            found.extend(_object_schemas(value, f"{where}/{key}"))
    return found


def test_every_object_level_restricts_its_keys() -> None:
    for where, sub in _object_schemas(load_schema()):
        assert "additionalProperties" in sub, where
        if "properties" in sub and not sub.get("additionalProperties"):
            assert sub["additionalProperties"] is False, where


def test_every_property_has_type_and_description() -> None:
    for where, sub in _object_schemas(load_schema()):
        for name, prop in sub.get("properties", {}).items():
            assert "description" in prop, f"{where}.{name}"
            assert "type" in prop, f"{where}.{name}"


@pytest.mark.parametrize("path", _key_paths(_default()), ids=lambda p: ".".join(p))
def test_every_default_equals_config_yaml(path: tuple[str, ...]) -> None:
    """Deleting any key of config.yaml and validating restores its value from the schema defaults."""
    cfg = _default()
    node = cfg
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    assert validate_config(cfg) == _default()


def test_snakemake_validate_accepts_schema_and_fills_same_defaults() -> None:
    from snakemake.utils import validate

    cfg = _default()
    validate(cfg, str(SCHEMA_PATH), set_default=True)
    assert cfg == _default()

    partial: dict[str, Any] = {"simulate": {"n_patients": 3, "split_counts": {"train": 1, "validation": 1, "test": 1}}}
    expected = validate_config(partial)
    validate(partial, str(SCHEMA_PATH), set_default=True)
    assert partial == expected


# --- validate_config -------------------------------------------------------------------------------------


def test_default_config_validates_unchanged() -> None:
    cfg = _default()
    validated = validate_config(cfg)
    assert validated == _default()
    assert cfg == _default()  # input not modified
    assert validated is not cfg


def test_empty_config_gets_every_default() -> None:
    assert validate_config({}) == _default()


def test_defaults_filled_for_omitted_section() -> None:
    cfg = _default()
    del cfg["sessions"]
    validated = validate_config(cfg)
    assert validated["sessions"]["clinical"] == "clinical"
    assert validated["sessions"]["research"] == "research"
    assert "sessions" not in cfg


def test_defaults_filled_inside_partial_section() -> None:
    validated = validate_config({"simulate": {"seed": 7}, "resources": {"qc": {"mem_mb": 100}}})
    assert validated["simulate"]["seed"] == 7
    assert validated["simulate"]["n_patients"] == 20
    assert validated["resources"]["qc"] == {"mem_mb": 100, "runtime": 20}
    assert validated["resources"]["simulate"] == {"mem_mb": 6000, "runtime": 30}


def test_defaults_are_not_shared_between_calls() -> None:
    first = validate_config({})
    first["simulate"]["control_months"].append(99)
    first["sessions"]["clinical"] = "changed"
    assert validate_config({}) == _default()


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_presets_validate(preset: Path) -> None:
    cfg = load_config(DEFAULT_CONFIG, preset)
    overlay = yaml.safe_load(preset.read_text()) or {}

    def check(merged: Any, values: Any, where: str) -> None:  # preset values win; nested mappings merge
        if isinstance(values, dict):
            for key, value in values.items():
                check(merged[key], value, f"{where}.{key}")
        else:
            assert merged == values, where

    check(cfg, overlay, preset.stem)


def test_tiny_preset_values() -> None:
    cfg = load_config(DEFAULT_CONFIG, REPO / "workflow" / "presets" / "tiny.yaml")
    assert cfg["simulate"]["n_patients"] == 3
    assert cfg["simulate"]["template_resolution_mm"] == 2
    assert cfg["simulate"]["stroke_probability"] == 0.2  # kept from config.yaml
    assert cfg["sequences"] == ["T1w", "T2w", "FLAIR"]


@pytest.mark.parametrize(
    ("path", "wrong", "parent"),
    [
        ("outputdir", "results", None),
        ("simulate.n_patiens", 3, "simulate"),
        ("sessions.clinic", "x", "sessions"),
        ("split.fractions.training", 0.5, "split.fractions"),
        ("simulate.split_counts.holdout", 1, "simulate.split_counts"),
        ("resources.simulate.mem", 10, "resources.simulate"),
        ("bids_filters.PD", {"acquisition": "x"}, "bids_filters"),
    ],
)
def test_misspelled_key_rejected(path: str, wrong: Any, parent: str | None) -> None:
    cfg = _with(path, wrong)
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    message = str(info.value)
    assert f"'{path.rsplit('.', 1)[-1]}'" in message
    assert "unexpected key" in message
    if parent:
        assert f"config key '{parent}'" in message


def test_misspelled_key_suggests_the_right_one() -> None:
    with pytest.raises(ConfigError, match="did you mean 'n_patients'"):
        validate_config(_with("simulate.n_patiens", 3))


def test_wrong_type_names_key() -> None:
    with pytest.raises(ConfigError) as info:
        validate_config(_with("simulate.n_patients", "many"))
    assert "config key 'simulate.n_patients'" in str(info.value)
    assert "integer" in str(info.value)


def test_minimum_message() -> None:
    cfg = _with("simulate.n_patients", -1)
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    assert str(info.value) == "config key 'simulate.n_patients': -1 is less than the minimum of 1"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("simulate.template_resolution_mm", 3),
        ("simulate.n_controls", -1),
        ("simulate.n_patients", 0),
        ("simulate.stroke_probability", 1.5),
        ("simulate.research_voxel_mm", 0),
        ("simulate.min_voxel_mm", -1),
        ("simulate.days_between_sessions", [8]),
        ("simulate.days_between_sessions", [8, 50, 95]),
        ("simulate.days_between_sessions", [8.5, 95]),
        ("simulate.control_months", []),
        ("simulate.protocol_weights", {"P1": -1}),
        ("split.fractions.train", 1.5),
        ("split.seed", "x"),
        ("sequences", []),
        ("sequences", ["T1w", "T1w"]),
        ("sequences", ["T1w", "PD"]),
        ("bids_dir", None),
        ("output_dir", ""),
        ("sessions.clinical", ""),
        ("resources.simulate.mem_mb", 0),
        ("resources.qc.runtime", 2.5),
        ("resources.segment", {"mem_mb": 1000}),
        ("resources.segment", {"mem_mb": 1000, "runtime": 10, "gpus": 1}),
        ("resources.segment", {"mem_mb": 1000, "runtime": 10, "threads": 0}),
    ],
)
def test_invalid_values_rejected(path: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=rf"config key '{path.split('.')[0]}"):
        validate_config(_with(path, value))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("bids_dir", "/data/bids"),
        ("simulate.template_resolution_mm", 2),
        ("simulate.protocol_weights", {"P1": 1, "P2": 0.5}),
        ("bids_filters", {"T1w": {"acquisition": "mprage"}}),
        ("sequences", ["FLAIR"]),
        ("resources.train", {"mem_mb": 16000, "runtime": 600, "threads": 8}),
        ("split.fractions", {"train": 0.5, "validation": 0.25, "test": 0.25}),
    ],
)
def test_valid_values_accepted(path: str, value: Any) -> None:
    validate_config(_with(path, value))


def test_split_counts_must_sum_to_n_patients() -> None:
    with pytest.raises(ConfigError) as info:
        validate_config(_with("simulate.n_patients", 21))
    message = str(info.value)
    assert "'simulate.split_counts'" in message
    assert "'simulate.n_patients'" in message
    assert "20" in message and "21" in message


def test_split_fractions_must_sum_to_one() -> None:
    with pytest.raises(ConfigError, match=r"'split\.fractions'.*1\.1"):
        validate_config(_with("split.fractions", {"train": 0.8, "validation": 0.2, "test": 0.1}))


def test_days_between_sessions_ordered() -> None:
    with pytest.raises(ConfigError, match="days_between_sessions"):
        validate_config(_with("simulate.days_between_sessions", [95, 8]))


def test_several_errors_reported_together() -> None:
    cfg = _with("simulate.n_patients", "many")
    cfg["outputdir"] = "x"
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    assert len(info.value.problems) == 2
    assert "simulate.n_patients" in str(info.value) and "outputdir" in str(info.value)


def test_config_error_is_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


# --- deep_merge and load_config --------------------------------------------------------------------------


def test_deep_merge() -> None:
    a = {"x": {"y": 1, "z": [1, 2]}, "w": 1}
    b = {"x": {"z": [3], "v": {"u": 1}}, "t": 2}
    a_before, b_before = copy.deepcopy(a), copy.deepcopy(b)
    assert deep_merge(a, b) == {"x": {"y": 1, "z": [3], "v": {"u": 1}}, "w": 1, "t": 2}
    assert (a, b) == (a_before, b_before)


def test_deep_merge_non_mapping_replaces_mapping() -> None:
    assert deep_merge({"x": {"y": 1}}, {"x": 3}) == {"x": 3}
    assert deep_merge({"x": 3}, {"x": {"y": 1}}) == {"x": {"y": 1}}


def test_load_config_merges_in_order_and_applies_overrides(tmp_path: Path) -> None:
    first = tmp_path / "first.yaml"
    second = tmp_path / "second.yaml"
    first.write_text("simulate:\n  seed: 1\n  n_controls: 2\n")
    second.write_text("simulate:\n  seed: 5\n")
    cfg = load_config(DEFAULT_CONFIG, first, second, overrides={"output_dir": "elsewhere"})
    assert cfg["simulate"]["seed"] == 5
    assert cfg["simulate"]["n_controls"] == 2
    assert cfg["simulate"]["n_patients"] == 20
    assert cfg["output_dir"] == "elsewhere"


def test_load_config_without_files_gives_defaults() -> None:
    assert load_config() == _default()


def test_load_config_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert load_config(DEFAULT_CONFIG, empty) == _default()


def test_load_config_rejects_bad_files(tmp_path: Path) -> None:
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listing)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_load_config_validates_overrides() -> None:
    with pytest.raises(ConfigError, match=r"simulate\.n_patients"):
        load_config(DEFAULT_CONFIG, overrides={"simulate": {"n_patients": "many"}})


# --- Snakemake profiles ----------------------------------------------------------------------------------

_SNAKEFILE = """\
rule all:
    input: "trained.txt"

rule superres_train:
    output: "trained.txt"
    resources: gpu=1
    shell: "touch {output}"
"""


def _snakemake(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "Snakefile").write_text(_SNAKEFILE)
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(tmp_path / "Snakefile"), "--dry-run", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_default_profile_parses(tmp_path: Path) -> None:
    result = _snakemake(tmp_path, "--profile", str(REPO / "profiles" / "default"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_profile_parses_with_cores_override(tmp_path: Path) -> None:
    result = _snakemake(tmp_path, "--profile", str(REPO / "profiles" / "default"), "--cores", "1")
    assert result.returncode == 0, result.stdout + result.stderr


def test_slurm_profile_parses(tmp_path: Path) -> None:
    """The SLURM plugin is not installed here: run the profile with the local executor instead, and read the
    partition the profile's set-resources gave the training rule (dry runs print string resources as <TBD>)."""
    (tmp_path / "Snakefile").write_text(
        _SNAKEFILE.replace('"touch {output}"', '"echo {resources.slurm_partition} > {output}"')
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(tmp_path / "Snakefile"),
            "--profile",
            str(REPO / "profiles" / "slurm"),
            "--executor",
            "local",
            "--cores",
            "1",
            "--latency-wait",
            "1",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "trained.txt").read_text().strip() == "gpu"  # set-resources applied to superres_train


def test_profile_keys_are_snakemake_options() -> None:
    from snakemake.cli import get_argument_parser

    options = {opt.lstrip("-") for action in get_argument_parser()._actions for opt in action.option_strings}
    plugin_options = {"executor"}  # choices extended by executor plugins
    for profile in ("default", "slurm"):
        keys = yaml.safe_load((REPO / "profiles" / profile / "config.yaml").read_text())
        for key in keys:
            assert key in options | plugin_options, f"profiles/{profile}: unknown option --{key}"
