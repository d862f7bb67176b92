"""Keep the conda environments in envs/ in sync with the dependencies declared in pyproject.toml."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[1]
ENV_DIR = REPO / "envs"
ENV_FILES = sorted(ENV_DIR.glob("*.yaml"))

#: The one environment every rule names.
ENV = ENV_DIR / "brainsr.yaml"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _pyproject_requirements() -> dict[str, Requirement]:
    """The package's dependencies and its `slurm` extra: the one environment holds both (issue 21)."""
    project = _pyproject()["project"]
    reqs = [Requirement(line) for line in project["dependencies"] + project["optional-dependencies"]["slurm"]]
    return {_normalise(r.name): r for r in reqs}


def _env(path: Path) -> dict[str, Any]:
    env = yaml.safe_load(path.read_text())
    assert isinstance(env, dict), path
    return env


def _pip_requirements(path: Path) -> list[Requirement]:
    sections = [d["pip"] for d in _env(path)["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, f"{path.name}: expected exactly one pip section"
    return [Requirement(line) for line in sections[0]]


def _conda_packages(path: Path) -> list[str]:
    return [d for d in _env(path)["dependencies"] if isinstance(d, str)]


def test_one_environment_named_by_every_rule() -> None:
    assert ENV_FILES == [ENV]
    smk = [*(REPO / "workflow" / "rules").glob("*.smk")]
    named = {m for path in smk for m in re.findall(r'conda:\s*\n\s*"([^"]+)"', path.read_text())}
    assert named == {"../../envs/brainsr.yaml"}
    # every shell rule names one (snakemake --lint, tests/test_workflow.py, flags a rule without)


def test_post_deploy_installs_this_checkout(tmp_path: Path) -> None:
    """Snakemake runs envs/brainsr.post-deploy.sh in the new environment: it must pip-install the repository root
    (editable, no dependencies). A stand-in pip records its arguments."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "pip").write_text('#!/bin/sh\necho "$@" > "$RECORD"\n')
    (fake / "pip").chmod(0o755)
    script = ENV_DIR / "brainsr.post-deploy.sh"
    assert script.read_text().startswith("#!/bin/sh\n")
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", "RECORD": str(tmp_path / "args")}
    subprocess.run(["sh", str(script)], check=True, env=env, cwd=tmp_path)
    args = (tmp_path / "args").read_text().split()
    assert args[:3] == ["install", "--no-deps", "-e"] and Path(args[3]).resolve() == REPO


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_layout(path: Path) -> None:
    env = _env(path)
    assert env["channels"] == ["conda-forge", "nodefaults"]
    header = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    assert header, f"{path.name}: start with a comment explaining the environment"
    assert "post-deploy" in " ".join(header), f"{path.name}: say how brainsr gets into it"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_conda_level_packages_are_python_and_pip_only(path: Path) -> None:
    """Python packages come through pip, where pyproject's specifiers apply verbatim."""
    conda = _conda_packages(path)
    names = {re.split(r"[=<>!~ ]", spec, maxsplit=1)[0] for spec in conda}
    assert names == {"python", "pip"}, conda
    python = next(spec for spec in conda if spec.startswith("python"))
    version = python.split("=", 1)[1].lstrip("=")
    assert SpecifierSet(_pyproject()["project"]["requires-python"]).contains(version)


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_pip_requirements_match_pyproject(path: Path) -> None:
    declared = _pyproject_requirements()
    names = [_normalise(r.name) for r in _pip_requirements(path)]
    assert len(names) == len(set(names)), f"{path.name}: duplicate requirements"
    for req in _pip_requirements(path):
        name = _normalise(req.name)
        assert name in declared, f"{path.name}: {req.name} is not a dependency in pyproject.toml"
        assert req.specifier == declared[name].specifier, (
            f"{path.name}: {req} differs from pyproject's {declared[name]}"
        )
        assert req.extras == declared[name].extras, f"{path.name}: extras of {req.name}"
        assert req.marker == declared[name].marker, f"{path.name}: marker of {req.name}"


def test_brainsr_env_covers_all_pyproject_dependencies() -> None:
    names = {_normalise(r.name) for r in _pip_requirements(ENV_DIR / "brainsr.yaml")}
    assert names == set(_pyproject_requirements())


def test_torch_pins() -> None:
    everywhere = [("pyproject.toml", list(_pyproject_requirements().values()))]
    everywhere += [(p.name, _pip_requirements(p)) for p in ENV_FILES]
    seen_torch = seen_torchio = 0
    for where, reqs in everywhere:
        for req in reqs:
            if _normalise(req.name) == "torch":
                seen_torch += 1
                assert str(req.specifier) == "==2.13.0", where
            if _normalise(req.name) == "torchio":
                seen_torchio += 1
                assert any(s.operator == "<" and s.version == "2" for s in req.specifier), where
    assert seen_torch == 2  # pyproject, envs/brainsr.yaml
    assert seen_torchio == 2


def test_nipype_is_not_a_dependency_and_the_readme_says_why() -> None:
    """Snakemake orchestrates and ANTsPy runs registration/N4 in-process: nipype has no job, so it is not declared."""
    assert "nipype" not in _pyproject_requirements()
    for path in ENV_FILES:
        assert "nipype" not in {_normalise(r.name) for r in _pip_requirements(path)}, path.name
    readme = (REPO / "README.md").read_text()
    assert "nipype is not a dependency" in readme
