"""Tests of brainsr.models: U-Net / attention U-Net G, ViT, critic D, Grad-CAM, identity baseline, factory."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from brainsr.models import (
    AttentionUNet,
    Critic,
    Identity,
    UNet,
    ViTSR,
    build_model,
    count_parameters,
    gradcam,
)

SHAPES = [(1, 3, 37, 45), (2, 3, 64, 64)]


def small_models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {
        "unet": UNet(filters=8),
        "attention_unet": AttentionUNet(filters=8),
        "vit": ViTSR(embed_dim=32, depth=1, heads=2, patch_size=8),
    }


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["unet", "attention_unet", "vit"])
def test_output_shape_and_range(name, shape):
    model = small_models()[name]
    torch.manual_seed(1)
    x = torch.rand(shape)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


@pytest.mark.parametrize("shape", SHAPES)
def test_attention_masks(shape):
    torch.manual_seed(0)
    model = AttentionUNet(filters=8)
    x = torch.rand(shape)
    with torch.no_grad():
        y, masks = model(x, return_attention=True)
    assert y.shape == x.shape
    assert len(masks) == 4 and len(model.attention_maps) == 4
    # Skip (encoder feature) sizes: full resolution, then each 2x2 max-pool floors the size.
    sizes = [shape[-2:]]
    for _ in range(3):
        sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
    sizes.reverse()  # coarse to fine
    for mask, stored, size in zip(masks, model.attention_maps, sizes, strict=True):
        assert mask.shape == (shape[0], 1, *size)
        assert torch.equal(mask, stored)
        assert float(mask.min()) >= 0.0 and float(mask.max()) <= 1.0
    plain = UNet(filters=8)
    with torch.no_grad():
        plain(x)
    assert plain.attention_maps == []


def test_parameter_counts():
    attention = count_parameters(AttentionUNet(3, 3, filters=64))
    plain = count_parameters(UNet(3, 3, filters=64))
    vit = count_parameters(ViTSR())
    print(f"AttentionUNet(filters=64): {attention}; UNet(filters=64): {plain}; ViTSR(): {vit}")
    assert abs(attention - 31e6) <= 0.15 * 31e6
    assert plain < attention
    assert vit < 10e6
    assert count_parameters(Identity()) == 0
    assert count_parameters(Critic()) > 0


def test_identity_baseline():
    x = torch.linspace(-0.5, 1.5, 3 * 4 * 5).view(1, 3, 4, 5)
    y = Identity()(x)
    assert torch.equal(y, x.clamp(0, 1))


@pytest.mark.parametrize("size", [64, 144])
def test_critic_score(size):
    torch.manual_seed(0)
    critic = Critic(filters=8)
    x = torch.rand(2, 3, size, size)
    critic.eval()
    with torch.no_grad():
        score = critic(x)
    assert score.shape == (2, 1)
    assert float(score.min()) >= 0.0 and float(score.max()) <= 1.0
    assert torch.equal(score, critic(x))
    critic.train()
    assert not torch.equal(critic(x), critic(x))


def test_critic_default_is_paper_dropout():
    critic = Critic()
    rates = [m.p for m in critic.modules() if isinstance(m, torch.nn.Dropout)]
    assert rates == [0.5] * 4


def test_gradcam():
    torch.manual_seed(0)
    critic = Critic(filters=8).eval()
    layer = critic.blocks[-1]
    x = torch.rand(2, 3, 48, 40)
    assert all(p.grad is None for p in critic.parameters())
    with torch.no_grad():
        cam = gradcam(critic, x)
    assert cam.shape == (2, 1, 48, 40)
    assert float(cam.min()) >= 0.0 and float(cam.max()) <= 1.0
    assert len(layer._forward_hooks) == 0 and len(layer._backward_hooks) == 0
    assert all(len(m._forward_hooks) == 0 for m in critic.modules())
    assert all(p.grad is None for p in critic.parameters())
    # Existing gradients are left as they were.
    critic(x).sum().backward()
    before = [p.grad.clone() for p in critic.parameters()]
    cam2 = gradcam(critic, x)
    assert torch.allclose(cam, cam2)
    for p, g in zip(critic.parameters(), before, strict=True):
        assert torch.equal(p.grad, g)


def smooth_image(seed: int, size: int = 32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, size // 4, size // 4, generator=gen)
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def test_attention_unet_learns():
    torch.manual_seed(0)
    target = smooth_image(0)
    kernel = torch.ones(3, 1, 3, 3) / 9
    inputs = F.conv2d(F.pad(target, (1, 1, 1, 1), mode="replicate"), kernel, groups=3)
    model = AttentionUNet(filters=8)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        optimiser.zero_grad()
        loss = F.l1_loss(model(inputs), target)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    with torch.no_grad():
        final = F.l1_loss(model(inputs), target).item()
    assert final <= 0.7 * losses[0], (losses[0], final)


def test_build_model():
    assert type(build_model("attention_unet", filters=8)) is AttentionUNet
    assert type(build_model("unet", filters=8)) is UNet
    assert type(build_model("vit", embed_dim=32, depth=1, heads=2)) is ViTSR
    assert type(build_model("critic", filters=8)) is Critic
    assert type(build_model("identity")) is Identity
    assert build_model("attention_unet", filters=8).attention
    with pytest.raises(ValueError, match="srgan") as info:
        build_model("srgan")
    for name in ["attention_unet", "unet", "vit", "critic", "identity"]:
        assert name in str(info.value)


@pytest.mark.parametrize("name", ["attention_unet", "unet", "vit", "critic"])
def test_determinism(name):
    kwargs = {"vit": {"embed_dim": 32, "depth": 1, "heads": 2}}.get(name, {"filters": 8})
    torch.manual_seed(0)
    a = build_model(name, **kwargs)
    torch.manual_seed(0)
    b = build_model(name, **kwargs)
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_instance_norm_matches_torch(memory_format):
    """The GroupNorm-backed InstanceNorm equals nn.InstanceNorm2d(affine=True), parameters and outputs."""
    from brainsr.models.unet import InstanceNorm

    torch.manual_seed(0)
    ours, ref = InstanceNorm(5), torch.nn.InstanceNorm2d(5, affine=True)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 2.0)
        ours.bias.uniform_(-1.0, 1.0)
    ref.load_state_dict(ours.state_dict())  # same keys: weight, bias
    x = (3.0 * torch.randn(2, 5, 9, 11) + 2.0).contiguous(memory_format=memory_format)
    torch.testing.assert_close(ours(x), ref(x.contiguous()), atol=2e-6, rtol=1e-5)
    # by hand for one channel: (x - mean) / sqrt(biased var + eps) * weight + bias
    c = x[1, 3]
    expected = (c - c.mean()) / torch.sqrt(c.var(unbiased=False) + 1e-5) * ours.weight[3] + ours.bias[3]
    torch.testing.assert_close(ours(x)[1, 3], expected, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: UNet(filters=4, depth=2, residual=True),
        lambda: AttentionUNet(filters=4, depth=2, residual=True),
        lambda: ViTSR(embed_dim=16, depth=1, heads=2, patch_size=8, residual=True),
    ],
)
def test_residual_generators_start_as_identity(make):
    """residual=True: zero-initialised last layer, so G(x) = sigmoid(logit(clamp(x))) = clamp(x) before training."""
    torch.manual_seed(0)
    model = make()
    x = torch.rand(2, 3, 37, 45)
    x[0, :, :5] = 0.0  # background clamps to 1e-3
    with torch.no_grad():
        y = model(x)
    torch.testing.assert_close(y, x.clamp(1e-3, 1 - 1e-3), atol=1e-6, rtol=1e-5)
    # one gradient step moves it away from the identity (the correction is learnable)
    out = model(x)
    F.l1_loss(out, torch.zeros_like(out)).backward()
    head = model.head if hasattr(model, "head") else model.unpatch
    assert float(head.weight.grad.abs().sum()) > 0


def test_residual_needs_matching_channels():
    with pytest.raises(ValueError, match="in_channels == out_channels"):
        UNet(in_channels=3, out_channels=1, filters=4, depth=2, residual=True)
    with pytest.raises(ValueError, match="in_channels == out_channels"):
        ViTSR(in_channels=3, out_channels=1, residual=True)
