"""Benchmark: super-resolution inference per scan and training throughput (issue 4 targets).

Each configuration runs in its own process (so its peak memory is its own) on random data of the paper's grid
(148 slices of 137 x 135, three sequences as channels) and writes one row of the table::

    python benchmarks/superres.py --out benchmarks/superres.tsv            # everything (about 15 min on 2 cores)
    python benchmarks/superres.py --only inference --filters 16 64

Inference: one whole scan through ``brainsr.infer.upsample_volume`` (slices in batches, padded to a multiple of
16) with the attention U-Net at 16 and 64 filters in fp32 (NCHW and channels-last), bf16 autocast + channels-last,
and bf16 + torch.compile;
after one warm-up scan (its time, with compilation, is the ``warmup_s`` column). Training: slices per second of
``brainsr.train.trainer.train_step`` (generator + critic steps as the experiment defaults have them) per model,
the naive way (fp32, NCHW, slices zero-padded to 256 x 256, the paper's power of two), fp32 channels-last padded to
144 x 144 (the padding alone), and the fast way (bf16 autocast, channels-last, padded to 144 x 144).
Targets on the 2-core machine: 64 filters <= 5 s per scan;
training >= 3x the naive throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

GRID = (137, 135, 148)  # (X, Y, Z): axial slices of 137 x 135, as in the paper (3.2)


def _inference(cfg: dict) -> dict:
    import numpy as np
    import torch

    from brainsr.infer import InferenceSettings, upsample_volume
    from brainsr.models import AttentionUNet

    torch.manual_seed(0)
    model = AttentionUNet(in_channels=3, out_channels=3, filters=cfg["filters"])
    volume = np.random.default_rng(0).random((3, *GRID), dtype=np.float32)
    settings = InferenceSettings(
        precision=cfg["precision"], channels_last=cfg["channels_last"], compile=cfg["compile"], batch_size=16
    )
    device = torch.device(cfg["device"])
    t0 = time.perf_counter()
    upsample_volume(model, volume, settings, device)
    warmup = time.perf_counter() - t0
    t0 = time.perf_counter()  # second scan: compiled kernels (if any) are cached by then
    upsample_volume(model, volume, settings, device)
    seconds = time.perf_counter() - t0
    return {"seconds_per_scan": seconds, "warmup_s": warmup}


def _training(cfg: dict) -> dict:
    import torch

    from brainsr.data import padded_size
    from brainsr.train.settings import TrainSettings
    from brainsr.train.trainer import make_state, train_step

    settings = TrainSettings.from_mapping(cfg["settings"])
    size = padded_size(GRID[:2], settings.pad)
    device = torch.device(cfg["device"])
    torch.manual_seed(0)
    state = make_state(settings, 3, size, device)
    batch = settings.batch_size
    x = torch.rand(batch, 3, *size)
    y = torch.rand(batch, 3, *size)
    for _ in range(cfg["warmup"]):
        train_step(state, x, y)
    t0 = time.perf_counter()
    for _ in range(cfg["steps"]):
        train_step(state, x, y)
    seconds = time.perf_counter() - t0
    return {"slices_per_s": cfg["steps"] * batch / seconds, "padded": f"{size[0]}x{size[1]}"}


def _child(cfg: dict) -> None:
    import torch

    torch.set_num_threads(cfg["threads"])
    result = _inference(cfg) if cfg["kind"] == "inference" else _training(cfg)
    print("RESULT " + json.dumps(result))


def _run(cfg: dict) -> dict:
    """Run one configuration in a child process; add its wall time and peak RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", json.dumps(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark {cfg} failed:\n{err[-3000:]}")
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result.update(peak_mb=usage.ru_maxrss / 1024.0, process_s=time.perf_counter() - start)
    return result


def configurations(args: argparse.Namespace) -> list[dict]:
    common = {"device": args.device, "threads": args.threads}
    configs = []
    if args.only in (None, "inference"):
        for filters in args.filters:
            for mode, precision, channels_last, compile_ in (
                ("fp32", "fp32", False, False),
                ("fp32+channels-last", "fp32", True, False),
                ("bf16", "bf16", True, False),
                ("bf16+compile", "bf16", True, True),
            ):
                configs.append(
                    {
                        **common,
                        "kind": "inference",
                        "model": f"attention_unet-{filters}",
                        "filters": filters,
                        "mode": mode,
                        "precision": precision,
                        "channels_last": channels_last,
                        "compile": compile_,
                    }
                )
    if args.only in (None, "training"):
        models = [
            ("attention_unet-16", {"model": "attention_unet", "filters": 16, "critic": True}),
            ("attention_unet-64", {"model": "attention_unet", "filters": 64, "critic": True}),
            ("unet-64", {"model": "unet", "filters": 64, "critic": False}),
            ("vit", {"model": "vit", "critic": False}),
        ]
        for name, model in models:
            for mode, extra in (
                ("naive fp32 256x256", {"precision": "fp32", "channels_last": False, "pad": "pow2"}),
                ("fp32 channels-last 144x144", {"precision": "fp32", "channels_last": True, "pad": 16}),
                ("bf16 channels-last 144x144", {"precision": "bf16", "channels_last": True, "pad": 16}),
            ):
                settings = {**model, **extra, "batch_size": args.batch_size, "critic_filters": 16}
                configs.append(
                    {
                        **common,
                        "kind": "training",
                        "model": name,
                        "mode": mode,
                        "settings": settings,
                        "warmup": 2,
                        "steps": args.steps,
                    }
                )
    return configs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/superres.tsv"))
    p.add_argument("--only", choices=["inference", "training"])
    p.add_argument("--filters", type=int, nargs="+", default=[16, 64])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _child(json.loads(args.child))
        return 0
    rows = []
    for cfg in configurations(args):
        result = _run(cfg)
        row = {"kind": cfg["kind"], "model": cfg["model"], "mode": cfg["mode"], **result}
        rows.append(row)
        print(json.dumps(row), flush=True)
    df = pd.DataFrame(rows)
    df.insert(0, "machine", f"{platform.processor() or platform.machine()} x{os.cpu_count()} ({args.device})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, sep="\t", index=False, float_format="%.3f")
    print(df.drop(columns=["machine"]).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
