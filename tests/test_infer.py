"""brainsr.infer: whole-scan upsampling, output geometry, native-space mapping, explanation maps (paper 3.6-3.7)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import small_model_file
from torch import nn

from brainsr.infer import InferenceSettings, explain_slices, upsample_volume
from brainsr.infer.scans import infer_scan
from brainsr.models import AttentionUNet, Critic
from brainsr.models.files import ModelFileError
from brainsr.preprocess.pipeline import native_chain
from brainsr.preprocess.register import invert_linear
from brainsr.preprocess.resample import resample

SEQS = ["T1w", "T2w", "FLAIR"]


class Doubler(nn.Module):
    """A stand-in generator whose output is known: 2x its input, per channel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * x


def _volume(shape=(3, 18, 20, 12), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = np.zeros(shape, np.float32)
    v[:, 3:15, 3:17, 2:10] = 0.4 * rng.random((shape[0], 12, 14, 8), dtype=np.float32)
    return v


@pytest.mark.parametrize(
    "settings",
    [
        InferenceSettings(batch_size=5, precision="fp32"),
        InferenceSettings(channels_mode="single", batch_size=4, precision="fp32", channels_last=False),
        InferenceSettings(input="patches", patch_size=8, patch_overlap=4, precision="fp32"),
        InferenceSettings(axis="coronal", pad="pow2", precision="fp32"),
    ],
    ids=["slices", "single", "patches", "coronal-pow2"],
)
def test_upsample_volume_maps_every_voxel(settings):
    vol = _volume()
    out = upsample_volume(Doubler(), vol, settings)
    assert out.shape == vol.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, np.clip(2 * vol, 0, 1), atol=1e-5)


def test_upsample_volume_masks_and_clips_and_runs_bf16():
    vol = _volume()
    model = AttentionUNet(in_channels=3, out_channels=3, filters=4, depth=2)
    mask = np.zeros(vol.shape[1:], bool)
    mask[5:12, 5:15, 3:9] = True
    out = upsample_volume(model, vol, InferenceSettings(precision="bf16"), mask=mask)
    assert out.min() >= 0 and out.max() <= 1
    assert not out[:, ~mask].any() and out[:, mask].all()
    empty = vol[:, :, :, 0].any()
    assert not empty and not out[:, :, :, 0].any()  # an empty slice stays empty


def test_explain_slices_returns_attention_and_gradcam():
    vol = _volume()
    model = AttentionUNet(in_channels=3, out_channels=3, filters=4, depth=2)
    critic = Critic(in_channels=3, filters=4)
    maps = explain_slices(model, critic, vol, [4, 6], InferenceSettings(), target=vol)
    assert maps["output"].shape == (2, 3, 18, 20)
    assert maps["attention_1"].shape == (2, 1, 16, 16) and maps["attention_2"].shape == (2, 1, 32, 32)
    for key in ("attention_1", "attention_2", "gradcam_output", "gradcam_target"):
        assert maps[key].min() >= 0 and maps[key].max() <= 1, key
    assert maps["gradcam_target"].shape == (2, 1, 18, 20)


def _rotation_mat(path, degrees: float, shift: tuple[float, float, float]) -> str:
    """An ITK affine transform file (rotation about z + shift), written with ANTsPy."""
    import ants

    t = np.deg2rad(degrees)
    matrix = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    tx = ants.create_ants_transform(
        transform_type="AffineTransform", dimension=3, matrix=matrix, translation=list(shift)
    )
    ants.write_transform(tx, str(path))
    return str(path)


def test_infer_scan_geometry_and_native_mapping(tmp_path):
    """Outputs lie on the template grid; native copies land on each clinical grid and match the originals."""
    rng = np.random.default_rng(1)
    from scipy.ndimage import gaussian_filter

    # clinical native grids: T1w 2 x 2 x 4 mm, T2w/FLAIR 2 x 2 x 3 mm, shifted origins
    native, brains = {}, {}
    for k, seq in enumerate(SEQS):
        zooms = (2.0, 2.0, 4.0 if seq == "T1w" else 3.0)
        shape = (30, 34, 14 if seq == "T1w" else 18)
        affine = np.diag([*zooms, 1.0])
        affine[:3, 3] = [-30.0 + k, -34.0, -28.0]
        data = np.zeros(shape, np.float32)
        data[6:24, 6:28, 3:-3] = 1.0
        data = gaussian_filter(data + 0.3 * rng.random(shape).astype(np.float32), 2.0)
        native[seq] = nib.Nifti1Image(data / data.max(), affine)
        brains[seq] = tmp_path / f"native_{seq}.nii.gz"
        nib.save(native[seq], brains[seq])
    # template grid 2 mm, and the transforms of the preprocessing chain
    tpl_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    tpl_affine[:3, 3] = [-28.0, -32.0, -26.0]
    grid = nib.Nifti1Image(np.zeros((28, 32, 26), np.float32), tpl_affine)
    fwd = _rotation_mat(tmp_path / "from-T1w_to-tpl.mat", 12.0, (4.0, -5.0, 3.0))
    inv = str(tmp_path / "from-tpl_to-T1w.mat")
    invert_linear(fwd, inv)
    seq_xfm = {s: _rotation_mat(tmp_path / f"from-{s}_to-T1w.mat", -8.0, (3.0, 0.0, 4.0)) for s in SEQS[1:]}
    images, out, out_native, spec = {}, {}, {}, {}
    for seq in SEQS:
        chain = [fwd] + ([seq_xfm[seq]] if seq != "T1w" else [])
        moved = resample(native[seq], grid, chain, "linear")
        images[seq] = tmp_path / f"tpl_{seq}.nii.gz"
        nib.save(nib.Nifti1Image(np.clip(np.asarray(moved.dataobj), 0, 1), tpl_affine), images[seq])
        out[seq] = str(tmp_path / "out" / f"space-tpl_desc-x_{seq}.nii.gz")
        out_native[seq] = str(tmp_path / "out" / f"desc-x_{seq}.nii.gz")
        transforms, invert = native_chain(inv, seq_xfm.get(seq))
        spec[seq] = {"reference": str(brains[seq]), "transforms": transforms, "invert": invert}
    info = infer_scan(
        images={s: str(p) for s, p in images.items()},
        out=out,
        model="identity",
        native=spec,
        out_native=out_native,
        explain=str(tmp_path / "out" / "explain.npz"),
    )
    assert set(info["seconds"]) == {"load", "upsample", "native", "explain"}
    for seq in SEQS:
        tpl_img = nib.load(out[seq])
        assert tpl_img.shape == grid.shape and np.allclose(tpl_img.affine, tpl_affine)
        back = nib.load(out_native[seq])
        assert back.shape == native[seq].shape and np.allclose(back.affine, native[seq].affine)
        a, b = np.asarray(back.dataobj), np.asarray(native[seq].dataobj)
        inside = a > 0.05
        assert inside.mean() > 0.2
        r = np.corrcoef(a[inside], b[inside])[0, 1]
        assert r > 0.9, seq
        # the same chain applied in the wrong direction lands visibly off
        wrong = resample(
            tpl_img,
            nib.load(brains[seq]),
            spec[seq]["transforms"],
            "linear",
            invert=[not flag for flag in spec[seq]["invert"]],
        )
        w = np.asarray(wrong.dataobj)
        assert np.corrcoef(w[inside], b[inside])[0, 1] < r - 0.05, seq
        sidecar = json.loads((tmp_path / "out" / f"desc-x_{seq}.json").read_text())
        assert sidecar["Space"] == "native" and sidecar["Model"]["Name"] == "identity"
    assert "output" in np.load(tmp_path / "out" / "explain.npz")


def test_infer_scan_refuses_a_model_for_another_prep_or_grid(tmp_path):
    vol = _volume()
    images, out = {}, {}
    for c, seq in enumerate(SEQS):
        images[seq] = str(tmp_path / f"{seq}.nii.gz")
        nib.save(nib.Nifti1Image(vol[c], np.eye(4)), images[seq])
        out[seq] = str(tmp_path / f"out_{seq}.nii.gz")
    path = small_model_file(tmp_path / "m.pt", SEQS, grid_shape=list(vol.shape[1:]))
    infer_scan(images=images, out=out, model=str(path), expect={"prep": "affinelinear"}, precision="fp32")
    assert nib.load(out["T1w"]).shape == vol.shape[1:]
    with pytest.raises(ModelFileError, match="rigidlinear"):
        infer_scan(images=images, out=out, model=str(path), expect={"prep": "rigidlinear"})
    with pytest.raises(ModelFileError, match="sequences"):
        infer_scan(images={s: images[s] for s in ("T2w", "T1w", "FLAIR")}, out=out, model=str(path))
    other = small_model_file(tmp_path / "g.pt", SEQS, grid_shape=[10, 10, 10])
    with pytest.raises(ValueError, match="trained on a"):
        infer_scan(images=images, out=out, model=str(other))
