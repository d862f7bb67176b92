"""Shared test helpers: the tiny preset's simulation settings and a one-patient synthetic cohort."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from brainsr.simulate.cohort import load_protocols, simulate_subject, write_dataset_files

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "workflow" / "presets" / "tiny.yaml"
PROTOCOLS = load_protocols(REPO / "resources" / "protocols.yaml")
SESSIONS = {"clinical": "clinical", "research": "research", "longitudinal_prefix": "month"}


def tiny_sim(**over: object) -> dict:
    """The tiny preset's simulate section merged over config.yaml, with overrides."""
    sim = yaml.safe_load((REPO / "config.yaml").read_text())["simulate"]
    sim.update(yaml.safe_load(TINY.read_text())["simulate"])
    sim.update(over)
    return sim


def make_cohort(root: Path, protocol: str) -> Path:
    """A BIDS dataset with one patient (sub-P001) acquired with ``protocol``, at 2 mm."""
    sim = tiny_sim(n_patients=1, n_controls=0, split_counts={"train": 1}, protocol_weights={protocol: 1})
    write_dataset_files(sim, root, PROTOCOLS)
    simulate_subject(sim, "P001", protocol, root, SESSIONS, PROTOCOLS)
    return root


@pytest.fixture(scope="session")
def p1_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One protocol-1 patient, shared read-only by the tests that need a generated dataset (copy to modify)."""
    return make_cohort(tmp_path_factory.mktemp("p1_cohort"), "P1")
