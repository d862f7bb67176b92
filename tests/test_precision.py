"""Precision by measurement (paper 3.9): ``auto`` probes fp32 against bf16 once per machine and model size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import brainsr.train.precision as precision
from brainsr.models.unet import UNet
from brainsr.train.precision import BF16_GAIN, cache_file, choose_precision, model_size_key, probe_seconds

CPU = torch.device("cpu")


def _small() -> nn.Module:
    return UNet(in_channels=3, out_channels=3, filters=4, depth=2)


def _choose(key: str = "unet4", requested: str = "auto", train: bool = True):
    return choose_precision(requested, CPU, model_key=key, build=_small, sample=torch.rand(2, 3, 16, 16), train=train)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("BRAINSR_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "precision.json"


def _fake_probe(monkeypatch, seconds: dict[str, float]) -> list[int]:
    calls: list[int] = []

    def probe(*args: object, **kwargs: object) -> dict[str, float]:
        calls.append(1)
        return dict(seconds)

    monkeypatch.setattr(precision, "probe_seconds", probe)
    return calls


def test_explicit_precision_is_kept_without_a_probe(cache: Path, monkeypatch) -> None:
    calls = _fake_probe(monkeypatch, {"fp32": 1.0, "bf16": 0.1})
    choice = _choose(requested="fp32")
    assert (choice.precision, choice.reason, calls) == ("fp32", "requested", [])
    assert choice.record() == {"precision": "fp32", "requested": "fp32", "reason": "requested"}
    assert not cache.exists()


@pytest.mark.parametrize(
    ("bf16_seconds", "expected"), [(0.5, "bf16"), (BF16_GAIN, "bf16"), (BF16_GAIN + 0.01, "fp32"), (1.4, "fp32")]
)
def test_bf16_only_when_clearly_faster(cache: Path, monkeypatch, bf16_seconds: float, expected: str) -> None:
    _fake_probe(monkeypatch, {"fp32": 1.0, "bf16": bf16_seconds})
    assert _choose().precision == expected


def test_decided_once_per_machine_workload_and_model_size(cache: Path, monkeypatch) -> None:
    calls = _fake_probe(monkeypatch, {"fp32": 1.0, "bf16": 0.5})
    first = _choose()
    assert first.precision == "bf16" and first.reason == "probe" and len(calls) == 1
    assert cache_file() == cache
    stored = json.loads(cache.read_text())
    assert list(stored) == [first.key] and stored[first.key] == {"fp32": 1.0, "bf16": 0.5}
    assert first.key.endswith("|train|unet4") and precision.machine_key() in first.key
    # the machine's decision is reused even if the machine now measures otherwise: a run never flips
    _fake_probe(monkeypatch, {"fp32": 0.5, "bf16": 1.0})
    again = _choose()
    assert again.precision == "bf16" and again.cached and not first.cached
    assert again.record() == first.record()  # the record does not tell a cached decision from a new one
    # another model size, or inference instead of training, is its own decision
    assert _choose(key="unet64").precision == "fp32"
    assert _choose(train=False).precision == "fp32"
    assert len(json.loads(cache.read_text())) == 3


def test_unwritable_cache_still_probes(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("BRAINSR_CACHE_DIR", str(blocker))
    _fake_probe(monkeypatch, {"fp32": 1.0, "bf16": 0.5})
    choice = _choose()
    assert choice.precision == "bf16" and "not cached" in choice.reason


def test_probe_times_both_modes_and_leaves_the_model_usable() -> None:
    model = _small()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for train in (True, False):
        seconds = probe_seconds(lambda: model, torch.rand(2, 3, 16, 16), train=train, repeats=1)
        assert set(seconds) == {"fp32", "bf16"} and all(s > 0 for s in seconds.values())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # no optimiser step
    assert all(p.grad is None for p in model.parameters())


def test_probe_takes_turns_and_keeps_each_modes_fastest_step(monkeypatch) -> None:
    """Load from other jobs only slows steps down: the modes alternate (so a burst falls on both) and the fastest
    step after the warm-up round is kept, not the median."""
    order: list[str] = []
    durations = {"fp32": iter([9.0, 0.50, 0.40, 5.0]), "bf16": iter([9.0, 0.30, 4.0, 0.35])}
    clock = [0.0]

    def step(model, x, train, dtype) -> None:
        mode = "fp32" if dtype is None else "bf16"
        order.append(mode)
        clock[0] += next(durations[mode])

    monkeypatch.setattr(precision, "_step", step)
    monkeypatch.setattr(precision.time, "perf_counter", lambda: clock[0])
    seconds = probe_seconds(_small, torch.rand(2, 3, 16, 16), train=True, repeats=3)
    assert order == ["fp32", "bf16"] * 4
    assert seconds == {"fp32": 0.4, "bf16": 0.3}


def test_model_size_key_tells_widths_and_input_apart() -> None:
    x = torch.rand(2, 3, 16, 16)
    wide = UNet(in_channels=3, out_channels=3, filters=8, depth=2)
    assert model_size_key(_small(), x) == model_size_key(_small(), x)
    assert model_size_key(_small(), x) != model_size_key(wide, x)
    assert model_size_key(_small(), x) != model_size_key(_small(), torch.rand(4, 3, 16, 16))


def test_probe_leaves_the_random_state_alone() -> None:
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    probe_seconds(_small, torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)), train=True, repeats=1)
    assert torch.equal(torch.rand(3), expected)
