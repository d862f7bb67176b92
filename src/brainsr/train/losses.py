"""Objectives of Li et al. 2022: pixel losses and SSIM for G (section 3.4), the critic loss (eq. 1), the critic
guidance term (eq. 2) and torch image metrics for validation during training (section 3.8.1, PSNR eq. 4).

All losses are computed in float32, with autocast disabled locally, so they can be called from inside a
``torch.autocast`` region (bf16/fp16 mixed precision) and always return float32 tensors. SSIM itself lives in
:mod:`brainsr.base.similarity` (shared with the NumPy evaluation) and is re-exported here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from brainsr.base.similarity import PSNR_IDENTICAL_DB, autocast_off, ssim

__all__ = [
    "LOSSES",
    "PSNR_IDENTICAL_DB",
    "CombinedLoss",
    "bce_loss",
    "critic_guidance",
    "critic_loss",
    "mae",
    "mae_loss",
    "mse_loss",
    "parse_loss",
    "psnr",
    "ssim",
    "ssim_loss",
]

#: Default clamp of probabilities before taking logs in the binary cross-entropies.
BCE_EPS = 1e-7


# --------------------------------------------------------------------------------------------- helpers


def _check_pair(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of float32 ``values``; with a 0/1 ``mask`` (broadcastable, e.g. 1 channel over C) a weighted mean."""
    if mask is None:
        return values.mean()
    weights = mask.to(device=values.device, dtype=torch.float32)
    try:
        weights = torch.broadcast_to(weights, values.shape)
    except RuntimeError:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not broadcast to the data shape {tuple(values.shape)}"
        ) from None
    total = weights.sum()
    if not bool(total > 0):
        raise ValueError("mask is empty (no nonzero element): the masked mean is undefined")
    return (values * weights).sum() / total


def _bce(prob: Tensor, target: Tensor, eps: float) -> Tensor:
    """Element-wise binary cross-entropy -[t ln p + (1 - t) ln(1 - p)] in float32, p clamped to [eps, 1 - eps]."""
    p = prob.float().clamp(eps, 1.0 - eps)
    t = target.float()
    return -(t * torch.log(p) + (1.0 - t) * torch.log1p(-p))


# --------------------------------------------------------------------------------------------- pixel losses


def mae_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean absolute error mean|ŷ - y| (section 3.4), over the masked elements if ``mask`` is given; float32."""
    _check_pair(pred, target)
    with autocast_off(pred):
        return _masked_mean((pred.float() - target.float()).abs(), mask)


def mse_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error mean(ŷ - y)² (section 3.4), over the masked elements if ``mask`` is given; float32."""
    _check_pair(pred, target)
    with autocast_off(pred):
        return _masked_mean((pred.float() - target.float()).square(), mask)


def bce_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None, *, eps: float = BCE_EPS) -> Tensor:
    """Binary cross-entropy -mean[y ln ŷ + (1 - y) ln(1 - ŷ)] (section 3.4) between a prediction in [0, 1] (the
    sigmoid output of G) and a target in [0, 1]; ŷ is clamped to [eps, 1 - eps].

    Computed in float32 with autocast disabled (``F.binary_cross_entropy`` refuses to run under autocast).
    """
    _check_pair(pred, target)
    with autocast_off(pred):
        return _masked_mean(_bce(pred, target, eps), mask)


def ssim_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """1 - SSIM (section 3.4: G maximises SSIM), with the default SSIM settings (data range 1, 11 taps, sigma 1.5)."""
    return 1.0 - ssim(pred, target, mask=mask)


#: Generator objectives by name (section 3.4); each is ``fn(pred, target, mask=None) -> scalar float32 tensor``.
LOSSES: dict[str, Callable[..., Tensor]] = {
    "mae": mae_loss,
    "mse": mse_loss,
    "bce": bce_loss,
    "ssim": ssim_loss,
}


# --------------------------------------------------------------------------------------------- combined loss

_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_TERM = re.compile(rf"\s*(?:(?P<weight>{_NUMBER})\s*\*\s*)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*")


def _valid_names() -> str:
    return ", ".join(LOSSES)


def _check_term(name: str, weight: float, spec: object) -> tuple[str, float]:
    key = name.strip().lower()
    if key not in LOSSES:
        raise ValueError(f"unknown loss term {name!r} in {spec!r}; valid names: {_valid_names()}")
    try:
        value = float(weight)
    except (TypeError, ValueError):
        raise ValueError(f"weight of loss term {name!r} in {spec!r} is not a number: {weight!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"weight of loss term {name!r} in {spec!r} must be a positive finite number, got {weight!r}; "
            f"valid names: {_valid_names()}"
        )
    return key, value


def parse_loss(spec: str | Mapping[str, float]) -> dict[str, float]:
    """Parse a generator objective specification into ``{name: weight}`` (names from :data:`LOSSES`).

    ``"mae"`` -> ``{"mae": 1.0}``; ``"mae+ssim"`` -> ``{"mae": 1.0, "ssim": 1.0}``; ``"0.8*mae+0.2*ssim"`` ->
    ``{"mae": 0.8, "ssim": 0.2}``. A mapping is validated (and its names lower-cased). Unknown names, repeated
    names, malformed terms and non-positive (or non-finite) weights raise ``ValueError``.
    """
    terms: list[tuple[str, float]] = []
    if isinstance(spec, str):
        pos = 0
        while True:
            m = _TERM.match(spec, pos)
            if m is None or not m.group("name"):
                bad = spec[pos:].split("+", 1)[0].strip() or spec
                raise ValueError(
                    f"malformed loss term {bad!r} in {spec!r}; expected '[weight*]name' joined by '+', "
                    f"valid names: {_valid_names()}"
                )
            weight = m.group("weight")
            terms.append(_check_term(m.group("name"), float(weight) if weight is not None else 1.0, spec))
            pos = m.end()
            if pos == len(spec):
                break
            if spec[pos] != "+":
                raise ValueError(
                    f"malformed loss term near {spec[m.start() :].strip()!r} in {spec!r}; expected "
                    f"'[weight*]name' joined by '+', valid names: {_valid_names()}"
                )
            pos += 1
    elif isinstance(spec, Mapping):
        terms = [_check_term(str(name), weight, dict(spec)) for name, weight in spec.items()]
    else:
        raise ValueError(f"loss spec must be a string or a mapping of name to weight, got {type(spec).__name__}")
    if not terms:
        raise ValueError(f"empty loss spec {spec!r}; valid names: {_valid_names()}")
    out: dict[str, float] = {}
    for name, weight in terms:
        if name in out:
            raise ValueError(f"loss term {name!r} appears more than once in {spec!r}")
        out[name] = weight
    return out


class CombinedLoss(nn.Module):
    """Weighted sum of generator objectives (section 3.4), e.g. ``CombinedLoss("0.8*mae+0.2*ssim")``."""

    def __init__(self, spec: str | Mapping[str, float]) -> None:
        super().__init__()
        self.weights: dict[str, float] = parse_loss(spec)

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
        """Return the weighted sum (float32 scalar, differentiable) and each term's unweighted value (floats)."""
        total: Tensor | None = None
        values: dict[str, float] = {}
        for name, weight in self.weights.items():
            term = LOSSES[name](pred, target, mask)
            values[name] = float(term.detach())
            total = weight * term if total is None else total + weight * term
        assert total is not None  # parse_loss guarantees at least one term
        return total, values

    def extra_repr(self) -> str:
        return " + ".join(f"{w:g}*{name}" for name, w in self.weights.items())


# --------------------------------------------------------------------------------------------- critic


def critic_loss(score_real: Tensor, score_fake: Tensor, *, eps: float = BCE_EPS) -> Tensor:
    """Critic objective, paper eq. (1): L_D = -E[ln D(y)] - E[ln(1 - D(ŷ))].

    I.e. BCE(D(y), 1) + BCE(D(ŷ), 0): the critic should score 1 for research (high-resolution) scans y and 0 for
    upsampled scans ŷ. Scores are sigmoid outputs (any shape, e.g. (N,) or (N, 1)), clamped to [eps, 1 - eps];
    each expectation is the mean over its batch. float32, autocast-safe.
    """
    with autocast_off(score_real):
        real = _bce(score_real, torch.ones_like(score_real, dtype=torch.float32), eps).mean()
        fake = _bce(score_fake, torch.zeros_like(score_fake, dtype=torch.float32), eps).mean()
        return real + fake


def critic_guidance(score_fake: Tensor) -> Tensor:
    """Critic-guidance term of paper eq. (2), ``1 - E[D(ŷ)]`` (float32); the caller multiplies it by λ_critic."""
    with autocast_off(score_fake):
        return 1.0 - score_fake.float().mean()


# --------------------------------------------------------------------------------------------- metrics


@torch.no_grad()
def psnr(pred: Tensor, target: Tensor, data_range: float = 1.0, mask: Tensor | None = None) -> Tensor:
    """PSNR = 10 log10(data_range² / MSE) in dB (paper eq. 4) over the whole batch (masked elements if ``mask``).

    If the MSE is exactly 0 (identical images) it returns :data:`PSNR_IDENTICAL_DB` (100 dB) instead of +inf.
    """
    mse = mse_loss(pred, target, mask)
    if not bool(mse > 0):
        return torch.tensor(PSNR_IDENTICAL_DB, dtype=torch.float32, device=mse.device)
    return 10.0 * torch.log10(data_range**2 / mse)


@torch.no_grad()
def mae(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """MAE metric mean|ŷ - y| (section 3.8.1) over the whole batch (masked elements if ``mask``); float32, no grad."""
    return mae_loss(pred, target, mask)
