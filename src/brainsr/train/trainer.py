"""Training loop of the super-resolution model G with its critic D (paper 3.4-3.5, 3.9, 4).

Per batch: ``ŷ = G(x)``; the generator loss ``L_G(ŷ, y) + λ (1 − E[D(ŷ)])`` (eq. 2) updates G; then D is
updated ``critic_steps`` times (5 in the paper) with eq. (1) on ``y`` (research, label 1) and ``ŷ`` (upsampled,
label 0). λ = 0 still trains D, so that Grad-CAM of the critic can be shown (paper 4.3, 4.8).

Adam, a cosine/step/constant learning-rate schedule, mixed precision (bf16 autocast on CPU, bf16/fp16 on CUDA
with a gradient scaler), channels-last tensors, optional ``torch.compile``. After every epoch a checkpoint with
both models, both optimisers, the scheduler, the scalers, every random state, the history and the best weights
so far is written atomically to ``work_dir``; a rerun with the same settings and inputs resumes after the last
finished epoch and ends with exactly the weights of an uninterrupted run (CPU). The model with the lowest
validation loss is kept and written as a self-describing model file (:mod:`brainsr.models.files`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset

from brainsr.base.device import pick_device
from brainsr.data import PatchDataset, ScanPair, SliceDataset
from brainsr.io import atomic_path, atomic_write_text, atomic_write_tsv
from brainsr.models import build_model, count_parameters
from brainsr.models.critic import Critic, gradcam
from brainsr.models.files import save_model_file
from brainsr.train.losses import CombinedLoss, critic_guidance, critic_loss, mae, psnr, ssim
from brainsr.train.precision import PrecisionChoice, choose_precision, model_size_key
from brainsr.train.settings import TrainSettings, autocast_dtype

log = logging.getLogger("brainsr.train")

__all__ = [
    "StopTraining",
    "TrainState",
    "build_datasets",
    "fingerprint",
    "make_state",
    "seed_everything",
    "train_experiment",
    "train_step",
]

CHECKPOINT = "checkpoint.pt"


class StopTraining(Exception):
    """Raised by an ``on_epoch_end`` callback to stop after the checkpoint of that epoch (tests: a killed job)."""


def seed_everything(seed: int) -> None:
    """Fixed seeds for Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the global state TorchIO draws from
    torch.manual_seed(seed)


def fingerprint(settings: TrainSettings, inputs: Sequence[str | os.PathLike], extra: Mapping[str, Any]) -> str:
    """Hash of the settings and of the input files (name, size, mtime): a checkpoint is resumed only if equal."""
    files = []
    for path in inputs:
        st = os.stat(path)
        files.append([str(path), st.st_size, int(st.st_mtime_ns)])
    blob = json.dumps({"settings": settings.as_dict(), "inputs": files, "extra": dict(extra)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def evenly_spaced(dataset: Dataset, n: int | None) -> Dataset:
    """At most ``n`` samples of ``dataset``, evenly spaced over it (the same ones every epoch); ``None``: all."""
    if n is None or len(dataset) <= int(n):
        return dataset
    return Subset(dataset, np.linspace(0, len(dataset) - 1, int(n)).round().astype(int).tolist())


def build_datasets(
    settings: TrainSettings, train: Sequence[ScanPair], validation: Sequence[ScanPair]
) -> tuple[Dataset, Dataset, tuple[int, int]]:
    """Training and validation samples in the experiment's input mode; returns also the model's image size.

    ``val_samples`` caps the validation set at an evenly spaced, fixed sample, so that validating each epoch costs
    the same whatever the number of validation subjects (issue 19)."""
    if settings.input == "slices":
        kw = {"axis": settings.axis, "pad": settings.pad, "channels": settings.channels}
        tr = SliceDataset(train, skip_empty=settings.skip_empty_slices, **kw)
        va = SliceDataset(validation, skip_empty=True, stride=settings.val_stride, **kw)
        return tr, evenly_spaced(va, settings.val_samples), tuple(tr.size)
    kw = {
        "axis": settings.axis,
        "patch_size": settings.patch_size,
        "channels": settings.channels,
        "sampler": settings.patch_sampler,
    }
    tr = PatchDataset(train, patches_per_scan=settings.patches_per_scan, seed=settings.seed, **kw)
    n_val = max(1, settings.patches_per_scan // max(1, settings.val_stride * 2))
    va = PatchDataset(validation, patches_per_scan=n_val, seed=settings.seed + 10_000, **kw)
    return tr, evenly_spaced(va, settings.val_samples), (settings.patch_size, settings.patch_size)


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}  # noqa: NPY002 - the global state TorchIO draws from
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])  # noqa: NPY002 - the global state TorchIO draws from
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _scheduler(settings: TrainSettings, optimiser: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    if settings.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=settings.epochs, eta_min=settings.lr * 0.01)
    if settings.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimiser, step_size=max(1, settings.epochs // 3), gamma=0.1)
    return torch.optim.lr_scheduler.LambdaLR(optimiser, lambda _epoch: 1.0)


class _Runner:
    """Moves batches to the device and runs the modules under the experiment's precision."""

    def __init__(self, precision: str, channels_last: bool, device: torch.device) -> None:
        self.device = device
        self.dtype = autocast_dtype(precision)
        self.channels_last = channels_last
        self.scaled = self.dtype == torch.float16

    def batch(self, t: Tensor) -> Tensor:
        t = t.to(self.device, non_blocking=True)
        return t.contiguous(memory_format=torch.channels_last) if self.channels_last else t

    def autocast(self) -> Any:
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)


@dataclass
class TrainState:
    """The modules, optimisers and gradient scalers of one experiment (what a checkpoint holds, with the RNG)."""

    settings: TrainSettings
    run: _Runner
    generator: nn.Module
    critic: Critic | None
    forward: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    objective: CombinedLoss
    model_kwargs: dict[str, Any]
    precision: PrecisionChoice


def make_state(settings: TrainSettings, channels: int, image_size: tuple[int, int], device: torch.device) -> TrainState:
    """Build G (and D) with Adam optimisers on ``device``, channels-last and compiled as the settings ask; the
    precision (``auto``: measured on this machine for this model size, :mod:`brainsr.train.precision`)."""
    model_kwargs = settings.model_kwargs(channels, image_size)
    generator = build_model(settings.model, **model_kwargs)
    sample = torch.rand(settings.batch_size, channels, *image_size, generator=torch.Generator().manual_seed(0))
    choice = choose_precision(  # the probe restores the random state: the critic's initial weights do not move
        settings.precision,
        device,
        model_key=model_size_key(generator, sample),
        build=lambda: build_model(settings.model, **model_kwargs),
        sample=sample,
        train=True,
    )
    run = _Runner(choice.precision, settings.channels_last, device)
    generator = generator.to(device)
    critic = Critic(**settings.critic_kwargs(channels)).to(device) if settings.critic else None
    if settings.channels_last:
        generator = generator.to(memory_format=torch.channels_last)
        critic = critic.to(memory_format=torch.channels_last) if critic is not None else None
    return TrainState(
        settings=settings,
        run=run,
        generator=generator,
        critic=critic,
        forward=torch.compile(generator) if settings.compile else generator,
        opt_g=torch.optim.Adam(generator.parameters(), lr=settings.lr, weight_decay=settings.weight_decay),
        opt_d=torch.optim.Adam(critic.parameters(), lr=settings.critic_lr, betas=(0.5, 0.999)) if critic else None,
        scaler_g=torch.amp.GradScaler(device.type, enabled=run.scaled),
        scaler_d=torch.amp.GradScaler(device.type, enabled=run.scaled),
        objective=CombinedLoss(settings.loss),
        model_kwargs=model_kwargs,
        precision=choice,
    )


def train_step(state: TrainState, x: Tensor, y: Tensor) -> dict[str, float]:
    """One generator update with ``L_G + λ(1 − E[D(ŷ)])`` (eq. 2), then ``critic_steps`` critic updates (eq. 1)."""
    st, run, critic = state.settings, state.run, state.critic
    x, y = run.batch(x), run.batch(y)
    with run.autocast():
        y_hat = state.forward(x)
    loss_g, terms = state.objective(y_hat.float(), y)
    if critic is not None and st.critic_lambda > 0:
        critic.requires_grad_(False)
        with run.autocast():
            guided = critic_guidance(critic(y_hat))
        critic.requires_grad_(True)
        loss_g = loss_g + st.critic_lambda * guided
        terms["critic_guidance"] = float(guided.detach())
    state.opt_g.zero_grad(set_to_none=True)
    state.scaler_g.scale(loss_g).backward()
    state.scaler_g.step(state.opt_g)
    state.scaler_g.update()
    terms["loss"] = float(loss_g.detach())
    if critic is not None:
        fake = y_hat.detach()
        for _ in range(st.critic_steps):
            with run.autocast():
                s_real, s_fake = critic(y), critic(fake)
            loss_d = critic_loss(s_real, s_fake)
            state.opt_d.zero_grad(set_to_none=True)
            state.scaler_d.scale(loss_d).backward()
            state.scaler_d.step(state.opt_d)
            state.scaler_d.update()
        terms.update(
            critic_loss=float(loss_d.detach()),
            critic_real=float(s_real.detach().float().mean()),
            critic_fake=float(s_fake.detach().float().mean()),
        )
    return terms


def _epoch_loader(train_ds: Dataset, settings: TrainSettings, epoch: int) -> DataLoader:
    """The epoch's shuffled batches (seeded by epoch): every sample, or ``samples_per_epoch`` of them drawn without
    replacement, so that the cost of an epoch does not grow with the cohort (issue 19; the paper: every slice)."""
    order = torch.Generator().manual_seed(settings.seed * 1009 + epoch)
    n = settings.samples_per_epoch
    if n is None or n >= len(train_ds):
        return DataLoader(train_ds, batch_size=settings.batch_size, shuffle=True, generator=order)
    sampler = RandomSampler(train_ds, replacement=False, num_samples=int(n), generator=order)
    return DataLoader(train_ds, batch_size=settings.batch_size, sampler=sampler)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


@torch.no_grad()
def _validate(
    generator: nn.Module,
    critic: Critic | None,
    loader: DataLoader,
    objective: CombinedLoss,
    run: _Runner,
) -> dict[str, float]:
    """Validation loss and image metrics (MAE, PSNR, SSIM over whole samples, data range 1) of G and of the input."""
    generator.eval()
    sums: dict[str, float] = {}
    count = 0
    for x, y in loader:
        x, y = run.batch(x), run.batch(y)
        with run.autocast():
            y_hat = generator(x)
        y_hat = y_hat.float()
        n = x.shape[0]
        wide = min(y.shape[-2:]) >= 11  # SSIM's 11-tap window needs samples of at least 11 pixels
        values = {
            "val_loss": float(objective(y_hat, y)[0]),
            "val_mae": float(mae(y_hat, y)),
            "val_psnr": float(psnr(y_hat, y)),
            "val_ssim": float(ssim(y_hat, y)) if wide else float("nan"),
            "val_mae_input": float(mae(x, y)),
            "val_psnr_input": float(psnr(x, y)),
            "val_ssim_input": float(ssim(x, y)) if wide else float("nan"),
        }
        if critic is not None:
            critic.eval()
            with run.autocast():
                values["val_critic_real"] = float(critic(y).float().mean())
                values["val_critic_fake"] = float(critic(y_hat).float().mean())
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value * n
        count += n
    generator.train()
    return {k: v / max(count, 1) for k, v in sums.items()}


def _log_images(
    writer: Any, generator: nn.Module, critic: Critic | None, sample: tuple[Tensor, Tensor], run: _Runner, epoch: int
) -> None:
    """TensorBoard image grids: input / output / target per channel, |difference|, attention masks, Grad-CAM."""
    x, y = (run.batch(t[None]) for t in sample)
    generator.eval()
    with torch.no_grad(), run.autocast():
        out = generator(x, return_attention=True) if getattr(generator, "attention", False) else generator(x)
    y_hat, masks = out if isinstance(out, tuple) else (out, [])
    y_hat = y_hat.float()
    generator.train()
    for c in range(x.shape[1]):
        grid = torch.cat([x[0, c], y_hat[0, c], y[0, c], (y[0, c] - y_hat[0, c]).abs()], dim=1).float()
        writer.add_image(f"images/channel{c}_input_output_target_absdiff", grid.clamp(0, 1)[None].cpu(), epoch)
    for k, alpha in enumerate(masks):
        writer.add_image(f"attention/gate{k + 1}", alpha[0].float().clamp(0, 1).cpu(), epoch)
    if critic is not None:
        critic.eval()
        cams = [gradcam(critic, t.float()) for t in (y_hat, y)]
        critic.train()
        writer.add_image("gradcam/output_target", torch.cat([c[0, 0] for c in cams], dim=1)[None].cpu(), epoch)


def _checkpoint_fingerprint(
    settings: TrainSettings, state: TrainState, data_meta: Mapping[str, Any], inputs: Sequence[str | os.PathLike]
) -> str:
    """The fingerprint a checkpoint must carry to be resumed: settings, inputs, data, model and precision."""
    # the precision enters the fingerprint: a checkpoint never resumes in another mode
    meta_fp = {"data": dict(data_meta), "model_kwargs": state.model_kwargs, "precision": state.precision.precision}
    return fingerprint(settings, inputs, json.loads(json.dumps(meta_fp, default=str)))


def _resume(
    ckpt_path: Path, fp: str, state: TrainState, sched: torch.optim.lr_scheduler.LRScheduler, dev: torch.device
) -> tuple[list[dict[str, float]], dict[str, Any], int]:
    """Load the checkpoint of the same fingerprint into the modules, optimisers, scheduler, scalers and random
    state; return the history, the best model so far and the first epoch to train (a fresh start without one)."""
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"loss": float("inf"), "epoch": -1, "generator": None, "critic": None, "metrics": {}}
    start_epoch = 0
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=dev, weights_only=False)
        if ckpt.get("fingerprint") == fp:
            state.generator.load_state_dict(ckpt["generator"])
            state.opt_g.load_state_dict(ckpt["opt_g"])
            sched.load_state_dict(ckpt["scheduler"])
            state.scaler_g.load_state_dict(ckpt["scaler_g"])
            if state.critic is not None:
                state.critic.load_state_dict(ckpt["critic"])
                state.opt_d.load_state_dict(ckpt["opt_d"])
                state.scaler_d.load_state_dict(ckpt["scaler_d"])
            history, best = ckpt["history"], ckpt["best"]
            start_epoch = int(ckpt["epoch"]) + 1
            _set_rng_state(ckpt["rng"])
            log.info("resuming from %s after epoch %d", ckpt_path, start_epoch)
        else:
            log.warning("%s was written for other settings or inputs; starting from scratch", ckpt_path)
    return history, best, start_epoch


def _open_writer(work: Path, start_epoch: int) -> Any:
    """The TensorBoard writer under ``work``, dropping what a killed run logged after ``start_epoch``."""
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(work / "tensorboard"), purge_step=start_epoch)


def _log_start(state: TrainState, n_params: int, train_ds: Dataset, val_ds: Dataset, dev: torch.device) -> None:
    """The experiment's first line in the log: model, size, samples, device, autocast."""
    log.info(
        "%s: %d parameters, %d training / %d validation samples of %s, device %s, autocast %s",
        state.settings.model,
        n_params,
        len(train_ds),
        len(val_ds),
        tuple(train_ds[0][0].shape),
        dev,
        state.run.dtype,
    )


def _train_epoch(
    state: TrainState, train_ds: Dataset, epoch: int, progress: bool
) -> tuple[dict[str, float], int, float]:
    """One epoch of :func:`train_step` over the epoch's batches: the sample-weighted sums of the loss terms, the
    number of samples seen and the seconds it took."""
    from tqdm import tqdm

    settings = state.settings
    state.generator.train()
    if state.critic is not None:
        state.critic.train()
    loader = _epoch_loader(train_ds, settings, epoch)
    sums: dict[str, float] = {}
    seen, t0 = 0, time.perf_counter()
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{settings.epochs}", disable=not progress, leave=False)
    for x, y in bar:
        terms = train_step(state, x, y)
        n = x.shape[0]
        seen += n
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + value * n
        bar.set_postfix(loss=f"{sums['loss'] / seen:.4f}")
    return sums, seen, time.perf_counter() - t0


def _epoch_row(
    state: TrainState, val_loader: DataLoader, epoch: int, sums: dict[str, float], seen: int, seconds: float
) -> dict[str, float]:
    """The epoch's history row: learning rate, mean training terms, validation metrics, throughput."""
    row: dict[str, float] = {"epoch": epoch + 1, "lr": state.opt_g.param_groups[0]["lr"]}
    row.update({f"train_{k}": v / max(seen, 1) for k, v in sums.items()})
    row.update(_validate(state.generator, state.critic, val_loader, state.objective, state.run))
    row.update(samples=seen, seconds=seconds, samples_per_s=seen / max(seconds, 1e-9))
    return row


def _best_so_far(best: dict[str, Any], row: dict[str, float], epoch: int, state: TrainState) -> dict[str, Any]:
    """The best model so far: a CPU copy of G's (and D's) weights when this epoch's validation loss is lower."""
    if row["val_loss"] < best["loss"]:
        generator, critic = state.generator, state.critic
        best = {
            "loss": row["val_loss"],
            "epoch": epoch + 1,
            "generator": copy.deepcopy({k: v.detach().cpu() for k, v in generator.state_dict().items()}),
            "critic": None
            if critic is None
            else copy.deepcopy({k: v.detach().cpu() for k, v in critic.state_dict().items()}),
            "metrics": {k: v for k, v in row.items() if k.startswith("val_")},
        }
    return best


def _log_epoch(settings: TrainSettings, epoch: int, row: dict[str, float]) -> None:
    """The epoch's line in the log."""
    log.info(
        "epoch %d/%d: train %.5f, val loss %.5f, MAE %.5f (input %.5f), PSNR %.2f (input %.2f), SSIM %.4f, %.1f s",
        epoch + 1,
        settings.epochs,
        row["train_loss"],
        row["val_loss"],
        row["val_mae"],
        row["val_mae_input"],
        row["val_psnr"],
        row["val_psnr_input"],
        row["val_ssim"],
        row["seconds"],
    )


def _write_tensorboard(
    writer: Any, state: TrainState, epoch: int, row: dict[str, float], image_sample: tuple[Tensor, Tensor]
) -> None:
    """The epoch's scalars and, every ``image_every`` epochs, its image grids in TensorBoard."""
    for key, value in row.items():
        if key != "epoch":
            writer.add_scalar(key.replace("_", "/", 1), value, epoch + 1)
    if state.settings.image_every and (epoch + 1) % state.settings.image_every == 0:
        _log_images(writer, state.generator, state.critic, image_sample, state.run, epoch + 1)
    writer.flush()


def _save_checkpoint(
    ckpt_path: Path,
    fp: str,
    epoch: int,
    state: TrainState,
    sched: torch.optim.lr_scheduler.LRScheduler,
    history: list[dict[str, float]],
    best: dict[str, Any],
) -> None:
    """Write the checkpoint after ``epoch`` atomically: everything a resumed run needs to continue exactly."""
    critic, opt_d = state.critic, state.opt_d
    snapshot = {
        "fingerprint": fp,
        "epoch": epoch,
        "generator": state.generator.state_dict(),
        "critic": critic.state_dict() if critic is not None else None,
        "opt_g": state.opt_g.state_dict(),
        "opt_d": opt_d.state_dict() if opt_d is not None else None,
        "scheduler": sched.state_dict(),
        "scaler_g": state.scaler_g.state_dict(),
        "scaler_d": state.scaler_d.state_dict(),
        "rng": _rng_state(),
        "history": history,
        "best": best,
    }
    _atomic_torch_save(snapshot, ckpt_path)


def _call_epoch_end(
    on_epoch_end: Callable[[int, dict[str, float]], None], epoch: int, row: dict[str, float], writer: Any
) -> None:
    """Call ``on_epoch_end`` after the checkpoint; on :class:`StopTraining` close the writer and re-raise."""
    try:
        on_epoch_end(epoch + 1, row)
    except StopTraining:
        if writer is not None:
            writer.close()
        raise


def _write_outputs(
    state: TrainState,
    best: dict[str, Any],
    history: list[dict[str, float]],
    *,
    channels: int,
    n_params: int,
    n_samples: int,
    dev: torch.device,
    data_meta: Mapping[str, Any],
    out_model: str | os.PathLike,
    out_history: str | os.PathLike,
) -> dict[str, Any]:
    """Write the best model file, its JSON summary and the history; return the summary."""
    settings, model_kwargs, critic = state.settings, state.model_kwargs, state.critic
    if best["generator"] is None:
        raise RuntimeError("no epoch was trained (epochs must be >= 1)")
    best_generator = build_model(settings.model, **model_kwargs)
    best_generator.load_state_dict(best["generator"])
    best_critic = None
    if critic is not None:
        best_critic = Critic(**settings.critic_kwargs(channels))
        best_critic.load_state_dict(best["critic"])
    summary = {
        "parameters": n_params,
        "best_epoch": best["epoch"],
        "epochs": settings.epochs,
        "samples": n_samples,
        "device": str(dev),
        "autocast": str(state.run.dtype),
        "precision": state.precision.precision,
        "precision_reason": state.precision.reason,
        "train_seconds": float(sum(r["seconds"] for r in history)),
        **best["metrics"],
    }
    save_model_file(
        out_model,
        generator=best_generator,
        model_name=settings.model,
        model_kwargs=model_kwargs,
        critic=best_critic,
        critic_kwargs=settings.critic_kwargs(channels) if critic is not None else None,
        data={
            **dict(data_meta),
            "channels_mode": settings.channels,
            "input": settings.input,
            "axis": settings.axis,
            "pad": settings.pad,
            "patch_size": settings.patch_size,
            "patch_overlap": settings.patch_overlap,
        },
        training={"settings": settings.as_dict(), **summary, "precision_choice": state.precision.record()},
    )
    atomic_write_tsv(pd.DataFrame(history), out_history, float_format="%.6g")
    atomic_write_text(json.dumps(summary, indent=2, default=float) + "\n", Path(out_model).with_suffix(".json"))
    return summary


def train_experiment(
    settings: TrainSettings,
    train_pairs: Sequence[ScanPair],
    validation_pairs: Sequence[ScanPair],
    *,
    out_model: str | os.PathLike,
    out_history: str | os.PathLike,
    work_dir: str | os.PathLike,
    data_meta: Mapping[str, Any],
    inputs: Sequence[str | os.PathLike] = (),
    device: str = "auto",
    tensorboard: bool = True,
    progress: bool = True,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train one experiment; write the best model file and the per-epoch history; return a summary.

    ``data_meta`` is recorded in the model file (prep, sequences, grid, intensity scaling...). ``inputs`` (the
    training files) enter the checkpoint fingerprint, so changed data never resumes a stale checkpoint.
    """
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    torch.set_flush_denormal(True)
    seed_everything(settings.seed)
    dev = pick_device(device)
    train_ds, val_ds, image_size = build_datasets(settings, train_pairs, validation_pairs)
    channels = int(train_ds[0][0].shape[0])
    state = make_state(settings, channels, image_size, dev)
    sched = _scheduler(settings, state.opt_g)
    fp = _checkpoint_fingerprint(settings, state, data_meta, inputs)
    ckpt_path = work / CHECKPOINT
    history, best, start_epoch = _resume(ckpt_path, fp, state, sched, dev)
    writer = _open_writer(work, start_epoch) if tensorboard else None

    val_loader = DataLoader(val_ds, batch_size=settings.batch_size, shuffle=False)
    image_sample = val_ds[len(val_ds) // 2]
    n_params = count_parameters(state.generator)
    _log_start(state, n_params, train_ds, val_ds, dev)
    for epoch in range(start_epoch, settings.epochs):
        sums, seen, seconds = _train_epoch(state, train_ds, epoch, progress)
        row = _epoch_row(state, val_loader, epoch, sums, seen, seconds)
        sched.step()
        history.append(row)
        best = _best_so_far(best, row, epoch, state)
        _log_epoch(settings, epoch, row)
        if writer is not None:
            _write_tensorboard(writer, state, epoch, row, image_sample)
        _save_checkpoint(ckpt_path, fp, epoch, state, sched, history, best)
        atomic_write_tsv(pd.DataFrame(history), work / "history.tsv", float_format="%.6g")
        if on_epoch_end is not None:
            _call_epoch_end(on_epoch_end, epoch, row, writer)
    if writer is not None:
        writer.close()
    return _write_outputs(
        state,
        best,
        history,
        channels=channels,
        n_params=n_params,
        n_samples=len(train_ds),
        dev=dev,
        data_meta=data_meta,
        out_model=out_model,
        out_history=out_history,
    )
