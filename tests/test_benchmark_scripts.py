"""Argument parsing of the benchmark scripts (their measurements run on a finished run, not in the suite)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_brain_extraction_engine_spec_carries_parameters() -> None:
    spec = _script("brain_extraction").engine_spec
    assert spec("deepbet") == ("deepbet", {})
    assert spec("deepbet:t1_fraction=0,t2_grow_mm=6.5") == ("deepbet", {"t1_fraction": 0, "t2_grow_mm": 6.5})
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        spec("deepbet:t1_fraction")
