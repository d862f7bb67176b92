"""Mixed precision chosen by measurement (paper 3.9: mixed precision), decided once per machine and model size.

``precision: auto`` on a CPU times the model on this machine in fp32 (channels-last) and in bf16 autocast
(channels-last) and takes bf16 only when it is clearly faster (:data:`BF16_GAIN`). CPU flags do not tell: without
AMX tiles, bf16 convolutions were 1.3-1.6x slower than fp32 on one Intel part and 2x faster for the 64-filter model
on an AMD EPYC, while the 16-filter model trained faster in fp32 there. The decision is cached per machine (CPU
model, core count, torch version), workload (training or inference) and model size in a JSON file, so every job
of a run, and every later run on the machine, uses the same mode, and the same config gives the same numbers.
The choice and the probe's timings are recorded in the model file and the output sidecars.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brainsr.io import atomic_write_text

__all__ = [
    "BF16_GAIN",
    "PrecisionChoice",
    "cache_file",
    "choose_precision",
    "machine_key",
    "model_size_key",
    "probe_seconds",
]

#: bf16 is chosen when it takes at most this fraction of fp32's time (a clear gain, not timing noise).
BF16_GAIN = 0.85
#: Bumped when the probe changes, so old cached decisions are not reused.
PROBE_VERSION = 2
#: The probe times at most this many samples of the batch (the 64-filter model takes seconds per sample on 2 cores).
PROBE_SAMPLES = 4
MODES = ("fp32", "bf16")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision used (``fp32``, ``bf16`` or ``fp16``), what was asked, why, and the probe's seconds per step."""

    precision: str
    requested: str
    reason: str
    seconds: dict[str, float] = field(default_factory=dict)
    key: str = ""
    cached: bool = False

    def record(self) -> dict[str, Any]:
        """The JSON record kept in model files and sidecars: the same whether the probe ran now or was cached."""
        return {k: v for k, v in asdict(self).items() if k != "cached" and v not in ("", {})}


def cache_file() -> Path:
    """``$BRAINSR_CACHE_DIR/precision.json`` (default ``$XDG_CACHE_HOME/brainsr``, else ``~/.cache/brainsr``)."""
    root = (
        os.environ.get("BRAINSR_CACHE_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "brainsr"
    )
    return Path(root) / "precision.json"


def machine_key() -> str:
    """CPU model, cores torch uses, torch version: what the speed of one mode depends on."""
    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name}|threads={torch.get_num_threads()}|torch={torch.__version__}"


def model_size_key(model: nn.Module, sample: torch.Tensor) -> str:
    """Architecture, parameter count (set by widths and depth) and input batch shape: what the timing depends on."""
    return f"{type(model).__name__}|params={sum(p.numel() for p in model.parameters())}|input={tuple(sample.shape)}"


def probe_seconds(
    build: Callable[[], nn.Module], sample: torch.Tensor, train: bool, repeats: int = 5
) -> dict[str, float]:
    """Fastest seconds of one forward (inference) or forward + backward (training) step per mode, after a warm-up.

    The modes take turns (fp32, bf16, fp32, ...), so that load from other jobs falls on both, and the fastest of
    ``repeats`` steps is kept: other jobs only ever slow a step down, so the minimum is the least disturbed
    estimate (a median taken under load chose the slower mode on a busy machine). The global random state is
    restored afterwards: probing or not (a cached decision) never changes a run's numbers.
    """
    x = sample.contiguous(memory_format=torch.channels_last)
    with torch.random.fork_rng(devices=[]):
        models = {}
        for mode in MODES:
            torch.manual_seed(0)
            models[mode] = build().to(memory_format=torch.channels_last).train(train)
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        for i in range(repeats + 1):
            for mode in MODES:
                start = time.perf_counter()
                _step(models[mode], x, train, torch.bfloat16 if mode == "bf16" else None)
                if i:  # the first round is the warm-up (oneDNN picks its kernels)
                    times[mode].append(time.perf_counter() - start)
    return {mode: round(min(t), 4) for mode, t in times.items()}


def _step(model: nn.Module, x: torch.Tensor, train: bool, dtype: torch.dtype | None) -> None:
    autocast = torch.autocast("cpu", dtype=dtype) if dtype is not None else contextlib.nullcontext()
    if not train:
        with torch.inference_mode(), autocast:
            model(x)
        return
    with autocast:
        y = model(x)
    y.float().abs().mean().backward()
    model.zero_grad(set_to_none=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside the cache, so concurrent jobs probe one at a time and all read one decision."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _decide(seconds: dict[str, float]) -> str:
    return "bf16" if seconds["bf16"] <= BF16_GAIN * seconds["fp32"] else "fp32"


def choose_precision(
    requested: str,
    device: torch.device,
    *,
    model_key: str,
    build: Callable[[], nn.Module],
    sample: torch.Tensor,
    train: bool,
) -> PrecisionChoice:
    """Resolve ``auto``: on CUDA bf16 where supported, else fp16; on a CPU by the cached or a new probe.

    ``model_key`` names the model size (architecture and widths); ``build`` makes a fresh model of that size and
    ``sample`` is a representative batch (the probe's input).
    """
    if requested != "auto":
        return PrecisionChoice(requested, requested, "requested")
    if device.type == "cuda":
        return PrecisionChoice("bf16" if torch.cuda.is_bf16_supported() else "fp16", requested, "cuda")
    key = f"v{PROBE_VERSION}|{machine_key()}|{'train' if train else 'infer'}|{model_key}"
    path = cache_file()
    try:
        with _locked(path):
            known = _read(path)
            cached = key in known
            seconds = known[key] if cached else probe_seconds(build, sample[:PROBE_SAMPLES], train)
            if not cached:
                atomic_write_text(json.dumps({**known, key: seconds}, indent=2, sort_keys=True) + "\n", path)
        reason = "probe"
    except OSError:  # no writable cache: probe for this process only
        seconds, cached, reason = probe_seconds(build, sample[:PROBE_SAMPLES], train), False, "probe (not cached)"
    seconds = {m: float(seconds[m]) for m in MODES}
    choice = PrecisionChoice(_decide(seconds), requested, reason, seconds, key, cached)
    log.info(
        "precision auto -> %s (%s s per step, %s %s)",
        choice.precision,
        seconds,
        "cached in" if cached else "measured now, cache",
        path,
    )
    return choice
