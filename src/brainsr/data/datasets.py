"""Training samples: whole padded slices or random P x P patches of paired scans (paper 3.2, 3.6).

* :class:`SliceDataset`: every slice (C, H, W) of every scan along the slicing axis, zero-padded (paper: to a power
  of two; here also to a multiple of 16), optionally one sequence at a time (single-channel experiments).
* :class:`PatchDataset`: ``patches_per_scan`` random P x P patches per scan, their locations drawn once, with a
  fixed seed, by a TorchIO sampler (uniform, or weighted towards the head so that patches are not empty air).
* :func:`predict_patches`: patch-wise inference stitched with TorchIO's GridSampler / GridAggregator, with
  overlap and Hann-window or average blending (paper 3.6).

Samples are ``(x, y)`` float32 tensors; input and target always come from the same voxels (paper: "the data
preparation procedure is applied to both low-resolution and high-resolution scans in parallel").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from brainsr.data.volumes import ScanPair, _axis, pad_hw, padded_size, to_slices

__all__ = ["PatchDataset", "SliceDataset", "patch_locations", "predict_patches"]

CHANNEL_MODES = ("multi", "single")


def _check_channels(channels: str) -> None:
    if channels not in CHANNEL_MODES:
        raise ValueError(f"channels must be one of {CHANNEL_MODES}, got {channels!r}")


class SliceDataset(Dataset):
    """Whole slices of paired scans, zero-padded to ``padded_size(..., pad)`` (paper 3.2).

    Args:
        pairs: scans with targets (``y`` not None).
        axis: slicing axis (``"axial"``, ``"coronal"``, ``"sagittal"`` or 0-2).
        pad: ``"pow2"`` (paper) or a multiple (16 for a depth-4 U-Net).
        channels: ``"multi"`` (the 3 sequences as channels) or ``"single"`` (each sequence its own 1-channel
            sample, one model for all sequences; paper 4.1.1).
        skip_empty: leave out slices where input and target are both all zero (air outside the template box).
        stride: keep every ``stride``-th slice (e.g. for a cheaper validation pass).
    """

    def __init__(
        self,
        pairs: Sequence[ScanPair],
        axis: str | int = "axial",
        pad: str | int = 16,
        channels: str = "multi",
        skip_empty: bool = True,
        stride: int = 1,
    ) -> None:
        _check_channels(channels)
        if not pairs:
            raise ValueError("SliceDataset needs at least one scan pair")
        self.axis, self.channels = _axis(axis), channels
        self.shape = to_slices(pairs[0].x, self.axis).shape[-2:]
        self.size = padded_size(self.shape, pad)
        self.inputs: list[Tensor] = []
        self.targets: list[Tensor] = []
        self.index: list[tuple[int, int, int]] = []  # (pair, slice, channel or -1)
        for p, pair in enumerate(pairs):
            if pair.y is None:
                raise ValueError(f"sub-{pair.subject}: a training pair needs a research (target) scan")
            x = to_slices(pair.x, self.axis)
            y = to_slices(pair.y, self.axis)
            if x.shape[-2:] != tuple(self.shape):
                raise ValueError(f"sub-{pair.subject}: slice shape {x.shape[-2:]} differs from {tuple(self.shape)}")
            self.inputs.append(torch.from_numpy(np.ascontiguousarray(pad_hw(x, self.size), dtype=np.float32)))
            self.targets.append(torch.from_numpy(np.ascontiguousarray(pad_hw(y, self.size), dtype=np.float32)))
            keep = range(0, x.shape[0], max(1, int(stride)))
            for s in keep:
                if skip_empty and not (x[s].any() or y[s].any()):
                    continue
                if channels == "multi":
                    self.index.append((p, s, -1))
                else:
                    self.index.extend((p, s, c) for c in range(x.shape[1]))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        p, s, c = self.index[i]
        x, y = self.inputs[p][s], self.targets[p][s]
        if c >= 0:
            x, y = x[c : c + 1], y[c : c + 1]
        return x, y


def _spatial(axis: int, size: int) -> tuple[int, int, int]:
    """TorchIO patch size of a 2D P x P patch lying in the slice plane of ``axis``."""
    shape = [size, size, size]
    shape[axis] = 1
    return tuple(shape)  # type: ignore[return-value]


def patch_locations(
    pair: ScanPair,
    axis: str | int,
    patch_size: int,
    n: int,
    seed: int,
    sampler: str = "weighted",
) -> np.ndarray:
    """``n`` random patch locations (N, 6: i0, j0, k0, i1, j1, k1) drawn by a TorchIO sampler with a fixed seed.

    ``sampler``: ``"uniform"`` (TorchIO UniformSampler, paper 3.2) or ``"weighted"`` (WeightedSampler with the
    head, i.e. voxels non-zero in input or target, as probability map, so that no patch is pure background).
    The global random state is left untouched.
    """
    import torchio as tio

    ax = _axis(axis)
    spatial = pair.x.shape[1:]
    if patch_size > min(s for i, s in enumerate(spatial) if i != ax):
        raise ValueError(f"sub-{pair.subject}: patch size {patch_size} exceeds the slice size {spatial}")
    fields = {"x": tio.ScalarImage(tensor=torch.from_numpy(np.ascontiguousarray(pair.x)), affine=pair.affine)}
    if sampler == "weighted":
        head = pair.x.any(0) if pair.y is None else (pair.x.any(0) | pair.y.any(0))
        fields["head"] = tio.LabelMap(tensor=torch.from_numpy(head[None].astype(np.uint8)), affine=pair.affine)
        draw = tio.WeightedSampler(_spatial(ax, patch_size), probability_map="head")
    elif sampler == "uniform":
        draw = tio.UniformSampler(_spatial(ax, patch_size))
    else:
        raise ValueError(f"unknown patch sampler {sampler!r}; expected 'uniform' or 'weighted'")
    subject = tio.Subject(**fields)
    state = np.random.get_state()  # noqa: NPY002 - the global state TorchIO draws from
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002 - the global state TorchIO draws from
        try:
            locations = [patch[tio.LOCATION].numpy() for patch in draw(subject, num_patches=n)]
        finally:
            np.random.set_state(state)  # noqa: NPY002 - the global state TorchIO draws from
    return np.stack(locations).astype(np.int64)


class PatchDataset(Dataset):
    """``patches_per_scan`` random 2D patches (C, P, P) per scan pair (paper 3.2, 4.1.2-4.1.3).

    Locations are drawn once per scan with ``seed`` + scan index (see :func:`patch_locations`), so the same
    config gives the same patches. ``channels="single"`` makes each sequence of a patch its own sample.
    """

    def __init__(
        self,
        pairs: Sequence[ScanPair],
        axis: str | int = "axial",
        patch_size: int = 64,
        patches_per_scan: int = 1000,
        channels: str = "multi",
        seed: int = 0,
        sampler: str = "weighted",
    ) -> None:
        _check_channels(channels)
        self.axis, self.patch_size, self.channels = _axis(axis), int(patch_size), channels
        self.inputs = [torch.from_numpy(np.ascontiguousarray(p.x, dtype=np.float32)) for p in pairs]
        self.targets = []
        self.index: list[tuple[int, tuple[int, ...], int]] = []
        for k, pair in enumerate(pairs):
            if pair.y is None:
                raise ValueError(f"sub-{pair.subject}: a training pair needs a research (target) scan")
            self.targets.append(torch.from_numpy(np.ascontiguousarray(pair.y, dtype=np.float32)))
            for loc in patch_locations(pair, self.axis, self.patch_size, patches_per_scan, seed + k, sampler):
                start = tuple(int(v) for v in loc[:3])
                channel_ids = [-1] if channels == "multi" else range(pair.x.shape[0])
                self.index.extend((k, start, c) for c in channel_ids)

    def __len__(self) -> int:
        return len(self.index)

    def _crop(self, volume: Tensor, start: tuple[int, ...]) -> Tensor:
        size = _spatial(self.axis, self.patch_size)
        i, j, k = start
        patch = volume[:, i : i + size[0], j : j + size[1], k : k + size[2]]
        return patch.squeeze(1 + self.axis)

    def __getitem__(self, n: int) -> tuple[Tensor, Tensor]:
        k, start, c = self.index[n]
        x, y = self._crop(self.inputs[k], start), self._crop(self.targets[k], start)
        if c >= 0:
            x, y = x[c : c + 1], y[c : c + 1]
        return x, y


def predict_patches(
    predict: Callable[[Tensor], Tensor],
    volume: np.ndarray,
    axis: str | int,
    patch_size: int,
    overlap: int,
    mode: str = "hann",
    batch_size: int = 16,
) -> np.ndarray:
    """Patch-wise inference on a (C, X, Y, Z) volume, stitched by TorchIO (paper 3.6).

    ``predict`` maps (N, C, P, P) to (N, C_out, P, P). Patches of P x P in the slice plane overlap by ``overlap``
    pixels; ``mode`` is the GridAggregator overlap mode (``"hann"``, ``"average"`` or ``"crop"``). The grid
    sampler draws P x P columns spanning the whole slicing axis (every slice's patch at that in-plane position:
    the 2D model treats them independently), which is the same result as one 2D patch at a time with about a
    hundred times fewer TorchIO patches.
    """
    import torchio as tio

    ax = _axis(axis)
    if overlap % 2 or overlap >= patch_size:
        raise ValueError(f"patch overlap must be even and smaller than the patch ({overlap} vs {patch_size})")
    size = [patch_size] * 3
    size[ax] = volume.shape[1 + ax]
    ov = [overlap] * 3
    ov[ax] = 0
    subject = tio.Subject(x=tio.ScalarImage(tensor=torch.from_numpy(np.ascontiguousarray(volume, np.float32))))
    grid = tio.GridSampler(subject, patch_size=tuple(size), patch_overlap=tuple(ov), padding_mode=0)
    aggregator = tio.GridAggregator(grid, overlap_mode=mode)
    loader = torch.utils.data.DataLoader(grid, batch_size=1, collate_fn=tio.utils.history_collate)
    for batch in loader:
        column = batch["x"][tio.DATA][0]  # (C, px, py, pz), one axis spanning the volume
        planes = column.movedim(1 + ax, 0)  # (S, C, P, P)
        out = torch.cat([predict(planes[i : i + batch_size]).float() for i in range(0, planes.shape[0], batch_size)])
        aggregator.add_batch(out.movedim(0, 1 + ax)[None], batch[tio.LOCATION])
    return aggregator.get_output_tensor().numpy()
