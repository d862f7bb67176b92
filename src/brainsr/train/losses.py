"""Objectives of Li et al. 2022: pixel losses and SSIM for G (section 3.4), the critic loss (eq. 1), the critic
guidance term (eq. 2) and torch image metrics for validation during training (section 3.8.1, PSNR eq. 4).

All losses are computed in float32, with autocast disabled locally, so they can be called from inside a
``torch.autocast`` region (bf16/fp16 mixed precision) and always return float32 tensors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import Tensor, nn

__all__ = [
    "LOSSES",
    "PSNR_IDENTICAL_DB",
    "CombinedLoss",
    "bce_loss",
    "critic_guidance",
    "critic_loss",
    "gaussian_window",
    "mae",
    "mae_loss",
    "mse_loss",
    "parse_loss",
    "psnr",
    "ssim",
    "ssim_loss",
]

#: PSNR returned when the MSE is exactly 0 (identical images), instead of +inf, so that averages stay finite.
PSNR_IDENTICAL_DB = 100.0

#: Default clamp of probabilities before taking logs in the binary cross-entropies.
BCE_EPS = 1e-7


# --------------------------------------------------------------------------------------------- helpers


@contextmanager
def _no_autocast(device: torch.device) -> Iterator[None]:
    """Disable autocast for ``device``'s type inside the block (no-op where autocast does not exist)."""
    try:
        ctx = torch.autocast(device_type=device.type, enabled=False)
    except RuntimeError:  # device type without autocast support
        yield
        return
    with ctx:
        yield


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


# --------------------------------------------------------------------------------------------- SSIM


def gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    """Normalised 1D Gaussian window (float32, sums to 1) of ``size`` taps centred on the middle one.

    With the defaults (11 taps, sigma 1.5) it is the window of Wang et al. 2004 and equals scipy's
    ``gaussian_filter`` kernel with ``truncate=3.5`` as used by skimage's SSIM (radius ``int(3.5 * 1.5 + 0.5) = 5``).
    """
    if size < 1:
        raise ValueError(f"window size must be >= 1, got {size}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return (w / w.sum()).to(torch.float32)


def _band(n: int, g: Tensor) -> Tensor:
    """(n, n - len(g) + 1) matrix whose column j holds ``g`` at rows j..j + len(g) - 1: ``x @ band`` is the
    'valid' correlation of the rows of ``x`` with ``g``."""
    k = len(g)
    rows = torch.arange(n, device=g.device)[:, None] - torch.arange(n - k + 1, device=g.device)[None, :]
    return torch.where((rows >= 0) & (rows < k), g[rows.clamp(0, k - 1)], torch.zeros((), device=g.device))


def _ssim_map(
    pred: Tensor,
    target: Tensor,
    *,
    data_range: float = 1.0,
    window: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """SSIM map (N, C, H - window + 1, W - window + 1) in float32 (paper eq. 5, Wang et al. 2004 eq. 13).

    Local statistics are Gaussian-weighted means computed with a separable 'valid' filter (two matrix products), with
    population (co)variances (skimage ``use_sample_covariance=False``). Autocast is disabled inside.
    """
    _check_pair(pred, target)
    if pred.dim() != 4:
        raise ValueError(f"SSIM expects (N, C, H, W) tensors, got shape {tuple(pred.shape)}")
    if window % 2 != 1:
        raise ValueError(f"SSIM window must be odd, got {window}")
    _, c, h, w = pred.shape
    if h < window or w < window:
        raise ValueError(f"images ({h}x{w}) are smaller than the SSIM window ({window})")
    with _no_autocast(pred.device):
        x = pred.float()
        y = target.float().to(x.device)
        # (Co)variances are shift-invariant: centring each image on its (constant, detached) mean before the
        # E[x²] - E[x]² differences reduces float32 cancellation ~10x (map within ~1e-5 of skimage's float64 map).
        off_x = x.detach().mean(dim=(2, 3), keepdim=True)
        off_y = y.detach().mean(dim=(2, 3), keepdim=True)
        x = x - off_x
        y = y - off_y
        g = gaussian_window(window, sigma).to(x.device)
        stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (N, 5C, H, W)
        stack = stack @ _band(w, g)  # 'valid' Gaussian filter along W, then H: matrix products (BLAS) run
        stack = (stack.transpose(-1, -2) @ _band(h, g)).transpose(-1, -2)  # several times faster than a
        # depthwise convolution on CPUs, same values to float rounding
        m_x, m_y, e_xx, e_yy, e_xy = stack.split(c, dim=1)
        var_x = e_xx - m_x * m_x
        var_y = e_yy - m_y * m_y
        cov_xy = e_xy - m_x * m_y
        mu_x = m_x + off_x
        mu_y = m_y + off_y
        c1 = (k1 * data_range) ** 2
        c2 = (k2 * data_range) ** 2
        num = (2.0 * mu_x * mu_y + c1) * (2.0 * cov_xy + c2)
        den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
        return num / den


def ssim(
    pred: Tensor,
    target: Tensor,
    *,
    data_range: float = 1.0,
    window: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    mask: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Differentiable SSIM (paper eq. 5; Wang et al. 2004) of (N, C, H, W) tensors, in float32.

    The Gaussian window (``window`` taps, ``sigma``) is applied without padding, so the SSIM map covers only the
    'valid' region, i.e. the image less ``(window - 1) // 2`` pixels on each side. This is exactly the region
    skimage averages over: ``structural_similarity(a, b, data_range=1, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)`` filters the whole image with reflection and then crops that border before
    taking the mean, and the cropped values do not depend on the reflected pixels. Our map therefore equals
    skimage's cropped ``full`` map and our mean its ``mssim`` up to float32 rounding (map ~1e-5, mean ~1e-7;
    both tested to 1e-5).

    ``reduction``: ``"mean"`` -> scalar mean over the maps of all samples and channels; ``"none"`` -> (N,) mean
    per sample. ``mask`` (N, 1, H, W) or (N, C, H, W) of 0/1 is cropped like the map and used as weights of the
    mean (a 1-channel mask is broadcast over channels); an empty (cropped) mask raises ``ValueError`` (for
    ``"none"``: an empty mask in any sample).
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    smap = _ssim_map(pred, target, data_range=data_range, window=window, sigma=sigma, k1=k1, k2=k2)
    if mask is None:
        return smap.mean() if reduction == "mean" else smap.mean(dim=(1, 2, 3))
    n, c, h, w = pred.shape
    if mask.dim() != 4 or mask.shape[0] != n or mask.shape[1] not in (1, c) or tuple(mask.shape[2:]) != (h, w):
        raise ValueError(f"mask shape {tuple(mask.shape)} must be (N, 1, H, W) or (N, C, H, W) for data {(n, c, h, w)}")
    pad = (window - 1) // 2
    weights = mask[:, :, pad : h - pad, pad : w - pad].to(device=smap.device, dtype=torch.float32)
    weights = weights.expand_as(smap)
    if reduction == "mean":
        return _masked_mean(smap, weights)
    totals = weights.sum(dim=(1, 2, 3))
    if not bool((totals > 0).all()):
        empty = torch.nonzero(totals <= 0).flatten().tolist()
        raise ValueError(f"mask is empty (after cropping the SSIM border) for sample(s) {empty}")
    return (smap * weights).sum(dim=(1, 2, 3)) / totals


# --------------------------------------------------------------------------------------------- pixel losses


def mae_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean absolute error mean|ŷ - y| (section 3.4), over the masked elements if ``mask`` is given; float32."""
    _check_pair(pred, target)
    with _no_autocast(pred.device):
        return _masked_mean((pred.float() - target.float()).abs(), mask)


def mse_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error mean(ŷ - y)² (section 3.4), over the masked elements if ``mask`` is given; float32."""
    _check_pair(pred, target)
    with _no_autocast(pred.device):
        return _masked_mean((pred.float() - target.float()).square(), mask)


def bce_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None, *, eps: float = BCE_EPS) -> Tensor:
    """Binary cross-entropy -mean[y ln ŷ + (1 - y) ln(1 - ŷ)] (section 3.4) between a prediction in [0, 1] (the
    sigmoid output of G) and a target in [0, 1]; ŷ is clamped to [eps, 1 - eps].

    Computed in float32 with autocast disabled (``F.binary_cross_entropy`` refuses to run under autocast).
    """
    _check_pair(pred, target)
    with _no_autocast(pred.device):
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
    with _no_autocast(score_real.device):
        real = _bce(score_real, torch.ones_like(score_real, dtype=torch.float32), eps).mean()
        fake = _bce(score_fake, torch.zeros_like(score_fake, dtype=torch.float32), eps).mean()
        return real + fake


def critic_guidance(score_fake: Tensor) -> Tensor:
    """Critic-guidance term of paper eq. (2), ``1 - E[D(ŷ)]`` (float32); the caller multiplies it by λ_critic."""
    with _no_autocast(score_fake.device):
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
