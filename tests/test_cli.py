"""The command line apart from the library: a cheap parser (no numpy, pandas, nibabel, torch or ANTs), its
argument types, and a package without import circles."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from importgraph import import_circles, import_graph

from brainsr.cli import build_parser
from brainsr.cli.args import json_object, key_path, key_value_pairs

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("numpy", "pandas", "nibabel", "torch", "ants", "scipy", "sklearn", "matplotlib", "bids", "nilearn")


def test_building_the_parser_imports_no_heavy_library():
    code = (
        "import sys\n"
        "from brainsr.cli import build_parser\n"
        "build_parser().parse_args(['evaluate', 'scanset', '--image', 'T1w=a', '--mask', 'm', '--out', 'dseg=d'])\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_the_parser_keeps_every_command():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == [
        "simulate",
        "cohort-qc",
        "inventory",
        "preprocess",
        "train",
        "infer",
        "upsample",
        "superres-table",
        "evaluate",
        "segment",
        "report",
        "validate-config",
    ]


def test_the_package_has_no_import_circle():
    graph = import_graph(SRC, "brainsr")
    assert "brainsr.metrics.scanset" in graph["brainsr.cli.evaluate"]  # a command's import inside its handler counts
    assert import_circles(graph) == []


def test_import_graph_finds_a_circle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from .. import a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.a"] == {"pkg.sub", "pkg.sub.b"} and graph["pkg.c"] == set()
    assert import_circles(graph) == [{"pkg.a", "pkg.sub.b"}]
    assert import_circles(import_graph(tmp_path, "pkg", module_level_only=True)) == []


def test_json_object_inline_or_from_a_file(tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps({"a": 1}))
    assert json_object('{"a": 1}') == json_object(f"@{tmp_path / 'spec.json'}") == {"a": 1}
    for bad, message in (("{", "not valid JSON"), ("[1]", "expected a JSON object"), ("@/no/such.json", "cannot")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            json_object(bad)


def test_key_value_items():
    assert key_path("T1w=a.nii.gz") == ("T1w", "a.nii.gz")
    with pytest.raises(argparse.ArgumentTypeError, match="expected KEY=PATH"):
        key_path("T1w")
    assert key_value_pairs(["T1w=a", "FLAIR=b=c"], "--image") == {"T1w": "a", "FLAIR": "b=c"}
    assert key_value_pairs(None, "--image") == {}
    with pytest.raises(ValueError, match="--out expects SEQUENCE=PATH, got 'x='"):
        key_value_pairs(["x="], "--out")
