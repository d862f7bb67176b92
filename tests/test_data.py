"""brainsr.data: slicing, padding, slice and patch datasets, patch-wise inference (paper 3.2, 3.6)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from brainsr.data import (
    PatchDataset,
    ScanPair,
    SliceDataset,
    crop_hw,
    from_slices,
    load_pair,
    pad_hw,
    padded_size,
    patch_locations,
    predict_patches,
    to_slices,
)
from brainsr.data.volumes import VolumeError


def _pair(subject: str = "A", shape: tuple[int, ...] = (3, 20, 22, 12), seed: int = 0) -> ScanPair:
    rng = np.random.default_rng(seed)
    y = np.zeros(shape, np.float32)
    y[:, 3:17, 4:18, 2:10] = rng.random((shape[0], 14, 14, 8), dtype=np.float32)
    x = 0.5 * y + 0.25 * np.roll(y, 1, axis=3)
    return ScanPair(subject, x, y, np.diag([2.0, 2.0, 2.0, 1.0]))


@pytest.mark.parametrize(
    "axis, sliced", [("axial", (12, 3, 20, 22)), ("coronal", (22, 3, 20, 12)), (0, (20, 3, 22, 12))]
)
def test_slices_round_trip(axis, sliced):
    vol = _pair().x
    s = to_slices(vol, axis)
    assert s.shape == sliced
    assert np.array_equal(from_slices(s, axis), vol)
    # axial slice k is the volume's z = k plane
    if axis == "axial":
        assert np.array_equal(s[5], vol[:, :, :, 5])


def test_unknown_axis():
    with pytest.raises(ValueError, match="unknown slicing axis"):
        to_slices(_pair().x, "oblique")


def test_padded_sizes():
    assert padded_size((149, 185), 16) == (160, 192)
    assert padded_size((149, 185), "pow2") == (256, 256)
    assert padded_size((137, 135), "pow2") == (256, 256)  # the paper's grid
    assert padded_size((137, 135), 16) == (144, 144)
    assert padded_size((64, 64), "pow2") == (64, 64)
    with pytest.raises(ValueError):
        padded_size((10, 10), 0)


def test_pad_and_crop_are_inverse_and_centred():
    a = np.arange(2 * 5 * 7, dtype=np.float32).reshape(2, 5, 7)
    p = pad_hw(a, (8, 16))
    assert p.shape == (2, 8, 16)
    assert np.array_equal(p[:, 1:6, 4:11], a)  # (8 - 5) // 2 = 1 on top, (16 - 7) // 2 = 4 on the left
    assert p.sum() == a.sum()
    assert np.array_equal(crop_hw(p, (5, 7)), a)
    with pytest.raises(ValueError, match="smaller"):
        pad_hw(a, (4, 16))


def test_slice_dataset_multi_and_single_channel():
    pair = _pair()
    ds = SliceDataset([pair], axis="axial", pad=16, skip_empty=True)
    assert ds.size == (32, 32)
    assert len(ds) == 9  # z = 2..10 hold the head (the input is shifted by one slice); 3 slices are empty
    x, y = ds[0]
    assert x.shape == y.shape == (3, 32, 32) and x.dtype == torch.float32
    assert torch.equal(torch.from_numpy(crop_hw(y.numpy(), (20, 22))), torch.from_numpy(pair.y[:, :, :, 2]))
    assert len(SliceDataset([pair], skip_empty=False)) == 12
    assert len(SliceDataset([pair], skip_empty=False, stride=3)) == 4
    single = SliceDataset([pair], channels="single")
    assert len(single) == 3 * 9
    xs, ys = single[4]  # slice 1 of the kept ones, channel 1
    assert xs.shape == (1, 32, 32)
    assert torch.equal(xs[0], ds[1][0][1]) and torch.equal(ys[0], ds[1][1][1])


def test_slice_dataset_needs_targets_and_equal_grids():
    pair = _pair()
    with pytest.raises(ValueError, match="target"):
        SliceDataset([ScanPair("B", pair.x, None, pair.affine)])
    with pytest.raises(ValueError, match="slice shape"):
        SliceDataset([pair, _pair("C", (3, 20, 24, 12))])


def test_patch_locations_are_seeded_and_inside_the_head():
    pair = _pair()
    a = patch_locations(pair, "axial", 8, 30, seed=3)
    b = patch_locations(pair, "axial", 8, 30, seed=3)
    c = patch_locations(pair, "axial", 8, 30, seed=4)
    assert a.shape == (30, 6) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.all(a[:, 3:] - a[:, :3] == [8, 8, 1])
    head = pair.x.any(0) | pair.y.any(0)
    for i0, j0, k0, i1, j1, _k1 in a:  # weighted sampler: the patch centre lies in the head
        assert head[(i0 + i1) // 2, (j0 + j1) // 2, k0]
    state = torch.get_rng_state()
    patch_locations(pair, "axial", 8, 5, seed=9, sampler="uniform")
    assert torch.equal(state, torch.get_rng_state())  # the global random state is untouched


def test_patch_dataset_crops_the_same_voxels_of_input_and_target():
    pair = _pair()
    ds = PatchDataset([pair], axis="coronal", patch_size=8, patches_per_scan=6, seed=1)
    assert len(ds) == 6
    _, (i, j, k), _ = ds.index[2]
    x, y = ds[2]
    assert x.shape == (3, 8, 8)
    assert torch.equal(x, torch.from_numpy(pair.x[:, i : i + 8, j, k : k + 8]))
    assert torch.equal(y, torch.from_numpy(pair.y[:, i : i + 8, j, k : k + 8]))
    assert len(PatchDataset([pair], patch_size=8, patches_per_scan=6, channels="single")) == 18
    with pytest.raises(ValueError, match="exceeds"):
        PatchDataset([pair], patch_size=64, patches_per_scan=2)


@pytest.mark.parametrize("mode", ["hann", "average"])
def test_predict_patches_reassembles_the_volume(mode):
    vol = _pair().x
    seen = []

    def fn(t: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(t.shape))
        return 2 * t

    out = predict_patches(fn, vol, "axial", patch_size=8, overlap=4, mode=mode, batch_size=5)
    assert out.shape == vol.shape
    assert all(s[1:] == (3, 8, 8) for s in seen)
    np.testing.assert_allclose(out, 2 * vol, atol=1e-5)
    with pytest.raises(ValueError, match="even"):
        predict_patches(fn, vol, "axial", patch_size=8, overlap=3)


def test_load_pair_checks_grids(tmp_path):
    pair = _pair()
    files = {}
    for name, data, affine in (
        ("c", pair.x[0], pair.affine),
        ("r", pair.y[0], pair.affine),
        ("shifted", pair.y[0], pair.affine + _shift()),
        ("four_d", pair.y, pair.affine),
    ):
        files[name] = tmp_path / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(data, affine), files[name])
    loaded = load_pair("A", [files["c"]], [files["r"]])
    assert loaded.x.shape == (1, 20, 22, 12) and np.allclose(loaded.affine, pair.affine)
    with pytest.raises(VolumeError, match=r"shifted\.nii\.gz.*not on the grid"):
        load_pair("A", [files["c"]], [files["shifted"]])
    with pytest.raises(VolumeError, match=r"four_d\.nii\.gz: expected a 3D image"):
        load_pair("A", [files["four_d"]])
    (tmp_path / "broken.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(VolumeError, match=r"broken\.nii\.gz: cannot read"):
        load_pair("A", [tmp_path / "broken.nii.gz"])


def _shift() -> np.ndarray:
    m = np.zeros((4, 4))
    m[0, 3] = 5.0
    return m
