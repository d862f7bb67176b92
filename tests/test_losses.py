"""Tests of brainsr.train.losses: pixel losses, SSIM (against skimage), loss specs, critic terms and metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter, gaussian_filter1d
from skimage.metrics import structural_similarity

from brainsr.base.similarity import gaussian_window, ssim_map
from brainsr.train.losses import (
    LOSSES,
    PSNR_IDENTICAL_DB,
    CombinedLoss,
    bce_loss,
    critic_guidance,
    critic_loss,
    mae,
    mae_loss,
    mse_loss,
    parse_loss,
    psnr,
    ssim,
    ssim_loss,
)

PRED = torch.tensor([[0.5, 1.0]])
TARGET = torch.tensor([[0.0, 1.0]])


def smooth_pair(seed: int, shape: tuple[int, int] = (40, 36)) -> tuple[np.ndarray, np.ndarray]:
    """Two correlated smooth random images in [0, 1] (float64)."""
    rng = np.random.default_rng(seed)
    a = gaussian_filter(rng.random(shape), sigma=2.0)
    a = (a - a.min()) / (a.max() - a.min())
    b = np.clip(a + gaussian_filter(rng.normal(0.0, 0.3, shape), sigma=1.0), 0.0, 1.0)
    return a, b


def skimage_ssim(a: np.ndarray, b: np.ndarray, **kw: object) -> tuple[float, np.ndarray]:
    return structural_similarity(
        a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True, **kw
    )


def as_nchw(*images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)[:, None]).float()


# ------------------------------------------------------------------------------------------ pixel losses


def test_pixel_losses_hand_values():
    assert mae_loss(PRED, TARGET).item() == pytest.approx(0.25)
    assert mse_loss(PRED, TARGET).item() == pytest.approx(0.125)
    # BCE: element 1 = -ln(1 - 0.5) = ln 2; element 2 = -ln(1) = 0 (pred clamped to 1 - eps).
    assert bce_loss(PRED, TARGET).item() == pytest.approx(math.log(2) / 2, abs=1e-6)
    pred = torch.tensor([0.9, 0.2, 0.7])
    target = torch.tensor([1.0, 0.0, 0.5])
    want = -(math.log(0.9) + math.log(0.8) + 0.5 * math.log(0.7) + 0.5 * math.log(0.3)) / 3
    assert bce_loss(pred, target).item() == pytest.approx(want, rel=1e-6)


def test_pixel_losses_return_float32_scalars():
    for fn in (mae_loss, mse_loss, bce_loss):
        out = fn(PRED.double(), TARGET.double())
        assert out.dtype == torch.float32 and out.dim() == 0


def test_bce_clamps_extremes():
    # pred 0 for target 1 is clamped to eps = 1e-7: -ln(1e-7).
    assert bce_loss(torch.tensor([0.0]), torch.tensor([1.0])).item() == pytest.approx(-math.log(1e-7), rel=1e-4)
    # pred 1 for target 0 is clamped to 1 - eps (rounded in float32 to 1 - 2**-23): -ln(2**-23).
    out = bce_loss(torch.tensor([1.0]), torch.tensor([0.0]))
    assert out.item() == pytest.approx(23 * math.log(2), rel=1e-4)
    assert torch.isfinite(bce_loss(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0])))


def test_masked_pixel_losses():
    pred = torch.tensor([[[[0.5, 1.0], [0.2, 0.0]]]])  # (1, 1, 2, 2)
    target = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    mask = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]]]])
    assert mae_loss(pred, target, mask).item() == pytest.approx((0.5 + 0 + 0.2) / 3)
    assert mse_loss(pred, target, mask).item() == pytest.approx((0.25 + 0 + 0.04) / 3)
    want_bce = -(math.log(0.5) + 0.0 + math.log(0.8)) / 3
    assert bce_loss(pred, target, mask).item() == pytest.approx(want_bce, abs=1e-6)
    # A boolean mask works too.
    assert mae_loss(pred, target, mask.bool()).item() == pytest.approx(0.7 / 3)


def test_one_channel_mask_broadcasts_over_channels():
    pred = torch.tensor([[[[1.0, 0.0]], [[0.5, 0.5]]]])  # (1, 2, 1, 2)
    target = torch.zeros_like(pred)
    mask = torch.tensor([[[[1.0, 0.0]]]])  # (1, 1, 1, 2): keeps the first column of both channels
    assert mae_loss(pred, target, mask).item() == pytest.approx((1.0 + 0.5) / 2)
    assert mse_loss(pred, target, mask).item() == pytest.approx((1.0 + 0.25) / 2)


def test_empty_mask_and_shape_errors():
    with pytest.raises(ValueError, match="empty"):
        mae_loss(PRED, TARGET, torch.zeros_like(PRED))
    with pytest.raises(ValueError, match="shapes differ"):
        mse_loss(PRED, TARGET[:, :1])


def test_bce_under_bf16_autocast():
    pred = torch.rand(2, 1, 8, 8).clamp(0.05, 0.95)
    target = torch.rand(2, 1, 8, 8)
    ref = bce_loss(pred, target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = bce_loss(pred.bfloat16(), target.bfloat16())
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(ref.item(), rel=2e-2)


# ------------------------------------------------------------------------------------------ SSIM


def test_gaussian_window():
    w = gaussian_window()
    assert w.shape == (11,) and w.dtype == np.float32
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(w, w[::-1])
    assert int(w.argmax()) == 5
    assert float(w[6] / w[5]) == pytest.approx(math.exp(-0.5 / 1.5**2), rel=1e-5)
    # Same taps as scipy's Gaussian filter used by skimage (truncate 3.5 -> radius 5): filter a delta.
    delta = np.zeros(31)
    delta[15] = 1.0
    np.testing.assert_allclose(w, gaussian_filter1d(delta, 1.5, truncate=3.5)[10:21], atol=1e-7)


def test_ssim_identical_is_one():
    x = torch.rand(2, 3, 20, 24)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(ssim(x, x, reduction="none"), torch.ones(2), atol=1e-6)
    assert ssim_loss(x, x).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_ssim_matches_skimage(seed: int):
    a, b = smooth_pair(seed)
    want, full_map = skimage_ssim(a, b)
    got = ssim(as_nchw(a), as_nchw(b))
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(want, abs=1e-5)
    # The valid map equals skimage's full map with the (win_size - 1) // 2 = 5 pixel border cropped.
    smap = ssim_map(as_nchw(a), as_nchw(b))[0, 0].double().numpy()
    assert smap.shape == (a.shape[0] - 10, a.shape[1] - 10)
    np.testing.assert_allclose(smap, full_map[5:-5, 5:-5], atol=1e-5)


def test_ssim_batch_channels_and_reduction_match_skimage():
    pairs = [smooth_pair(s, (32, 30)) for s in (10, 11, 12, 13)]
    # Batch of 2 samples x 2 channels.
    pred = torch.from_numpy(np.stack([[pairs[0][0], pairs[1][0]], [pairs[2][0], pairs[3][0]]])).float()
    target = torch.from_numpy(np.stack([[pairs[0][1], pairs[1][1]], [pairs[2][1], pairs[3][1]]])).float()
    per_image = [skimage_ssim(a, b)[0] for a, b in pairs]
    per_sample = ssim(pred, target, reduction="none")
    assert per_sample.shape == (2,)
    np.testing.assert_allclose(per_sample.numpy(), [np.mean(per_image[:2]), np.mean(per_image[2:])], atol=1e-5)
    assert ssim(pred, target).item() == pytest.approx(np.mean(per_image), abs=1e-5)
    # skimage's multichannel mode averages over channels like we do.
    chan = skimage_ssim(pred[0].double().numpy(), target[0].double().numpy(), channel_axis=0)[0]
    assert per_sample[0].item() == pytest.approx(chan, abs=1e-5)


def test_ssim_data_range():
    a, b = smooth_pair(7)
    want = skimage_ssim(a, b)[0]
    got = ssim(as_nchw(a) * 255.0, as_nchw(b) * 255.0, data_range=255.0)
    assert got.item() == pytest.approx(want, abs=1e-4)


def test_ssim_mask_weights_the_cropped_map():
    a, b = smooth_pair(5, (30, 30))
    pred, target = as_nchw(a), as_nchw(b)
    mask = torch.zeros(1, 1, 30, 30)
    mask[..., 5:15, 5:25] = 1.0
    smap = ssim_map(pred, target)
    want = smap[..., 0:10, 0:20].mean()
    assert ssim(pred, target, mask=mask).item() == pytest.approx(want.item(), abs=1e-6)
    assert ssim(pred, target, mask=torch.ones(1, 1, 30, 30)).item() == pytest.approx(ssim(pred, target).item())
    # A mask lying entirely in the cropped border is empty.
    border = torch.zeros(1, 1, 30, 30)
    border[..., :5, :] = 1.0
    with pytest.raises(ValueError, match="empty"):
        ssim(pred, target, mask=border)
    with pytest.raises(ValueError, match="empty"):
        ssim(pred, target, mask=border, reduction="none")


def test_ssim_multichannel_mask_and_per_sample():
    x = torch.rand(2, 2, 16, 16)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    mask = torch.zeros(2, 2, 16, 16)
    mask[0, 0] = 1.0  # sample 0: only channel 0
    mask[1] = 1.0  # sample 1: everything
    smap = ssim_map(x, y)
    out = ssim(x, y, mask=mask, reduction="none")
    assert out[0].item() == pytest.approx(smap[0, 0].mean().item(), abs=1e-6)
    assert out[1].item() == pytest.approx(smap[1].mean().item(), abs=1e-6)


def test_ssim_argument_errors():
    x = torch.rand(1, 1, 16, 16)
    with pytest.raises(ValueError, match="reduction"):
        ssim(x, x, reduction="sum")
    with pytest.raises(ValueError, match="smaller"):
        ssim(torch.rand(1, 1, 8, 16), torch.rand(1, 1, 8, 16))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        ssim(x[0], x[0])
    with pytest.raises(ValueError, match="odd"):
        ssim(x, x, window=10)


def test_ssim_gradient_flows():
    torch.manual_seed(0)
    target = torch.rand(2, 1, 24, 24)
    pred = torch.rand(2, 1, 24, 24, requires_grad=True)
    loss = ssim_loss(pred, target)
    loss.backward()
    assert pred.grad is not None
    assert torch.isfinite(pred.grad).all()
    assert pred.grad.abs().sum() > 0


def test_ssim_under_bf16_autocast():
    a, b = smooth_pair(3)
    pred, target = as_nchw(a), as_nchw(b)
    ref = ssim(pred, target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ssim(pred.bfloat16(), target.bfloat16())
        out_fp32_inputs = ssim(pred, target)
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(ref.item(), abs=1e-2)
    # With float32 inputs the computation is not downcast by autocast.
    assert out_fp32_inputs.item() == pytest.approx(ref.item(), abs=1e-6)
    # bf16 inputs give the float32 SSIM of the bf16-rounded images.
    assert out.item() == pytest.approx(ssim(pred.bfloat16().float(), target.bfloat16().float()).item(), abs=1e-6)


# ------------------------------------------------------------------------------------------ specs


def test_losses_registry():
    assert set(LOSSES) == {"mae", "mse", "bce", "ssim"}
    x = torch.rand(1, 1, 16, 16)
    for fn in LOSSES.values():
        out = fn(x, x, None)
        assert out.dtype == torch.float32 and out.dim() == 0


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("mae", {"mae": 1.0}),
        ("mae+ssim", {"mae": 1.0, "ssim": 1.0}),
        ("0.8*mae+0.2*ssim", {"mae": 0.8, "ssim": 0.2}),
        (" 2 * MSE + bce ", {"mse": 2.0, "bce": 1.0}),
        ("1e-1*mae+5E+0*ssim", {"mae": 0.1, "ssim": 5.0}),
        (".5*bce", {"bce": 0.5}),
        ({"mae": 1, "ssim": 0.5}, {"mae": 1.0, "ssim": 0.5}),
    ],
)
def test_parse_loss(spec, want):
    got = parse_loss(spec)
    assert got == pytest.approx(want)
    assert list(got) == list(want)
    assert all(isinstance(v, float) for v in got.values())


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("mae+l1", "'l1'"),
        ("0*mae", "'mae'"),
        ("-0.5*mae", "'mae'"),
        ("0.5*mae+inf*ssim", "inf"),
        ({"vgg": 1.0}, "'vgg'"),
        ({"mae": 0.0}, "'mae'"),
        ({"mae": -1.0}, "'mae'"),
        ({"mae": "abc"}, "'mae'"),
        ("", "malformed"),
        ("mae+", "malformed"),
        ("mae ssim", "malformed"),
        ("0.5*", "malformed"),
        ({}, "empty"),
        ("mae+mae", "more than once"),
    ],
)
def test_parse_loss_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_loss(spec)


def test_parse_loss_error_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: mae, mse, bce, ssim"):
        parse_loss("0.5*perceptual")
    with pytest.raises(ValueError, match="valid names"):
        parse_loss("-1*mae")


def test_combined_loss_weighted_sum():
    torch.manual_seed(1)
    target = torch.rand(2, 1, 16, 16)
    pred = torch.rand(2, 1, 16, 16, requires_grad=True)
    loss = CombinedLoss("0.8*mae+0.2*ssim+0.5*bce")
    total, terms = loss(pred, target)
    want = 0.8 * mae_loss(pred, target) + 0.2 * ssim_loss(pred, target) + 0.5 * bce_loss(pred, target)
    assert total.item() == pytest.approx(want.item(), rel=1e-6)
    assert set(terms) == {"mae", "ssim", "bce"}
    assert all(isinstance(v, float) for v in terms.values())
    assert terms["mae"] == pytest.approx(mae_loss(pred, target).item())
    assert terms["ssim"] == pytest.approx(ssim_loss(pred, target).item())
    assert total.item() == pytest.approx(0.8 * terms["mae"] + 0.2 * terms["ssim"] + 0.5 * terms["bce"], rel=1e-6)
    total.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    assert "0.8*mae" in repr(loss)


def test_combined_loss_with_mask():
    pred = torch.tensor([[[[0.5, 1.0], [0.2, 0.0]]]])
    target = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    mask = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]]]])
    total, terms = CombinedLoss({"mae": 2.0, "mse": 1.0})(pred, target, mask)
    assert terms == pytest.approx({"mae": 0.7 / 3, "mse": 0.29 / 3})
    assert total.item() == pytest.approx(2 * 0.7 / 3 + 0.29 / 3)


# ------------------------------------------------------------------------------------------ critic


def test_critic_loss_hand_value():
    out = critic_loss(torch.tensor([0.9]), torch.tensor([0.2]))
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(-(math.log(0.9) + math.log(0.8)), rel=1e-6)
    # Batch means of each expectation, any score shape.
    real = torch.tensor([[0.9], [0.6]])
    fake = torch.tensor([[0.2], [0.5]])
    want = -(math.log(0.9) + math.log(0.6)) / 2 - (math.log(0.8) + math.log(0.5)) / 2
    assert critic_loss(real, fake).item() == pytest.approx(want, rel=1e-6)


def test_critic_loss_perfect_critic_is_near_zero_and_autocast_safe():
    assert critic_loss(torch.ones(4), torch.zeros(4)).item() == pytest.approx(0.0, abs=1e-6)
    real = torch.tensor([0.9, 0.7])
    fake = torch.tensor([0.2, 0.4])
    ref = critic_loss(real, fake)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = critic_loss(real.bfloat16(), fake.bfloat16())
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(ref.item(), rel=1e-2)


def test_critic_guidance():
    out = critic_guidance(torch.tensor([0.2, 0.4]))
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(0.7)
    assert critic_guidance(torch.ones(3, 1)).item() == pytest.approx(0.0)
    scores = torch.tensor([0.3, 0.5], requires_grad=True)
    critic_guidance(scores).backward()
    assert torch.allclose(scores.grad, torch.tensor([-0.5, -0.5]))


# ------------------------------------------------------------------------------------------ metrics


def test_psnr_hand_value():
    target = torch.zeros(1, 1, 4, 4)
    pred = torch.full((1, 1, 4, 4), 0.1)  # MSE 0.01
    assert psnr(pred, target).item() == pytest.approx(20.0, abs=1e-4)
    assert psnr(pred * 255, target, data_range=255.0).item() == pytest.approx(20.0, abs=1e-4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 0, 0] = 1.0
    pred2 = pred.clone()
    pred2[..., 1:, :] = 1.0  # outside the mask
    assert psnr(pred2, target, mask=mask).item() == pytest.approx(20.0, abs=1e-4)


def test_psnr_identical_is_finite():
    x = torch.rand(2, 1, 8, 8)
    out = psnr(x, x)
    assert out.item() == PSNR_IDENTICAL_DB == 100.0
    assert out.dtype == torch.float32


def test_mae_metric_no_grad():
    pred = PRED.clone().requires_grad_(True)
    out = mae(pred, TARGET)
    assert out.item() == pytest.approx(0.25)
    assert not out.requires_grad
    assert psnr(pred, TARGET).requires_grad is False
    mask = torch.tensor([[1.0, 0.0]])
    assert mae(PRED, TARGET, mask).item() == pytest.approx(0.5)


def test_ssim_takes_numpy_arrays_and_tensors_alike():
    a, b = smooth_pair(8, (24, 28))
    arr_a, arr_b = a[None, None].astype(np.float32), b[None, None].astype(np.float32)
    on_arrays = ssim_map(arr_a, arr_b)
    assert isinstance(on_arrays, np.ndarray) and on_arrays.dtype == np.float32
    np.testing.assert_allclose(on_arrays, ssim_map(as_nchw(a), as_nchw(b)).numpy(), atol=1e-6)
    assert float(ssim(arr_a, arr_b)) == pytest.approx(skimage_ssim(a, b)[0], abs=1e-5)
    pred = as_nchw(a).requires_grad_()
    ssim_loss(pred, as_nchw(b)).backward()  # still differentiable for tensors
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    with pytest.raises(TypeError, match="NumPy arrays or all torch tensors"):
        ssim(arr_a, as_nchw(b))
