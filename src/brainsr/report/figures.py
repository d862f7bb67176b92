"""Figures of the evaluation (paper Figs. 5-13), each a matplotlib ``Figure`` with title, units and colour bars.

- Figs. 5-6: interpolated input, generated and research (target) image per sequence, mid-axial and mid-coronal;
- Fig. 7: absolute difference maps of input and generated image against the target;
- Fig. 8: the attention gates' masks (paper 3.7); Fig. 9: the critic's Grad-CAM of generated and target slices;
- Fig. 10: Bland-Altman plots of class volumes against the research scan's;
- Figs. 11-12: segmentation classes and WMH over FLAIR for research, interpolated and upsampled scans;
- Fig. 13: longitudinal variability of the control subjects' volumes (box plots per month);
- beyond the paper: the image metrics of every test subject per method, by acquisition protocol.
The statistical figures (Bland-Altman, box plots, distributions) are drawn with seaborn.
Slices are shown in RAS orientation (the left of each image is the subject's left).
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import nibabel as nib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from brainsr.base.display import (
    VIEWS,
    display_window,
    mask_centre,
    orthogonal_slices,
    plain_axes,
    show_slice,
    slice_aspect,
)
from brainsr.report.tables import CLASS_NAMES

__all__ = [
    "CLASS_COLOURS",
    "attention_figure",
    "bland_altman_figure",
    "comparison_figure",
    "difference_figure",
    "gradcam_figure",
    "load_canonical",
    "longitudinal_figure",
    "metric_distribution_figure",
    "note_figure",
    "segmentation_figure",
]

#: Colours of the segmentation labels 1-5 (CSF, sinus, pial, tissue, WMH) in Fig. 11 and 12.
CLASS_COLOURS = {1: "#1f77b4", 2: "#d62728", 3: "#ff7f0e", 4: "#2ca02c", 5: "#ffff33"}
_LABEL_CLASS = {1: "csf", 2: "sinus", 3: "pial", 4: "tissue", 5: "wmh"}


def load_canonical(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Image data in RAS+ orientation and its voxel sizes (mm)."""
    img = nib.as_closest_canonical(nib.load(path))
    return np.asarray(img.dataobj, np.float32), np.linalg.norm(img.affine[:3, :3], axis=0)


def note_figure(text: str, size: tuple[float, float] = (6, 2)) -> Figure:
    """A figure that says why there is nothing to plot (e.g. no controls, a generator without gates)."""
    fig = Figure(figsize=size)
    fig.text(0.5, 0.5, text, ha="center", wrap=True)
    return fig


def _label(ax, r: int, c: int, title: str, ylabel: str) -> None:
    """Column titles on the first row, row labels on the first column."""
    if r == 0:
        ax.set_title(title)
    if c == 0:
        ax.set_ylabel(ylabel)


def comparison_figure(
    rows: Mapping[str, Mapping[str, np.ndarray]], mask: np.ndarray, zooms: np.ndarray, view: str, title: str
) -> Figure:
    """Figs. 5-6: one row per sequence, one column per image (e.g. input, generated, target), one view."""
    centre = mask_centre(mask)
    columns = list(next(iter(rows.values())))
    fig = Figure(figsize=(3.0 * len(columns) + 0.8, 3.0 * len(rows) + 0.7), layout="constrained")
    axes = fig.subplots(len(rows), len(columns), squeeze=False)
    for r, (seq, images) in enumerate(rows.items()):
        lo, hi = display_window(images[columns[-1]], mask)
        for c, name in enumerate(columns):
            im = show_slice(axes[r, c], images[name], centre, view, zooms, cmap="gray", vmin=lo, vmax=hi)
            _label(axes[r, c], r, c, name, seq)
        fig.colorbar(im, ax=axes[r, -1], fraction=0.046, label="intensity (rescaled, a.u.)")
    fig.suptitle(title)
    return fig


def difference_figure(
    rows: Mapping[str, Mapping[str, np.ndarray]], target: str, mask: np.ndarray, zooms: np.ndarray, title: str
) -> Figure:
    """Fig. 7: |image − target| (mid-axial) of every other column of ``rows``, one shared colour scale per row."""
    centre = mask_centre(mask)
    columns = [c for c in next(iter(rows.values())) if c != target]
    fig = Figure(figsize=(3.0 * len(columns) + 0.8, 3.0 * len(rows) + 0.7), layout="constrained")
    axes = fig.subplots(len(rows), len(columns), squeeze=False)
    for r, (seq, images) in enumerate(rows.items()):
        diffs = {c: np.abs(images[c] - images[target]) * mask for c in columns}
        vmax = max(float(np.percentile(d[mask], 99.5)) if mask.any() else 1.0 for d in diffs.values()) or 1.0
        for c, name in enumerate(columns):
            d = diffs[name]
            im = show_slice(axes[r, c], d, centre, "axial", zooms, cmap="inferno", vmin=0, vmax=vmax)
            mean = float(d[mask].mean()) if mask.any() else float("nan")
            axes[r, c].set_title(f"|{name} − {target}|\nbrain MAE {mean:.4f}" if r == 0 else f"brain MAE {mean:.4f}")
            _label(axes[r, c], 1, c, "", seq)
        fig.colorbar(im, ax=axes[r, -1], fraction=0.046, label="absolute difference")
    fig.suptitle(title)
    return fig


def _explain_slice(maps: Mapping[str, np.ndarray], key: str, index: int, channel: int = 0) -> np.ndarray:
    return np.asarray(maps[key][index, channel], np.float32).T


def attention_figure(maps: Mapping[str, np.ndarray], sequences: list[str], title: str) -> Figure:
    """Fig. 8: for each explained slice, the input (first sequence) and the masks of the attention gates."""
    gates = sorted((k for k in maps if k.startswith("attention_")), key=lambda k: int(k.split("_")[1]))
    if not gates:
        raise ValueError("the explain file holds no attention masks (the generator has no attention gates)")
    n = len(maps["input"])
    fig = Figure(figsize=(2.6 * (len(gates) + 2), 2.6 * n + 0.8), layout="constrained")
    axes = fig.subplots(n, len(gates) + 2, squeeze=False)
    for r in range(n):
        axes[r, 0].imshow(_explain_slice(maps, "input", r), cmap="gray", origin="lower")
        axes[r, 1].imshow(_explain_slice(maps, "output", r), cmap="gray", origin="lower")
        for c, gate in enumerate(gates, start=2):
            im = axes[r, c].imshow(_explain_slice(maps, gate, r), cmap="viridis", vmin=0, vmax=1, origin="lower")
        for ax in axes[r]:
            plain_axes(ax)
        axes[r, 0].set_ylabel(f"slice {int(maps['indices'][r])}")
    axes[0, 0].set_title(f"input ({sequences[0]})")
    axes[0, 1].set_title(f"output ({sequences[0]})")
    for c, gate in enumerate(gates, start=2):
        axes[0, c].set_title(f"gate {gate.split('_')[1]} (coarse → fine)" if c == 2 else f"gate {gate.split('_')[1]}")
    fig.colorbar(im, ax=axes[:, -1], fraction=0.046, label="attention coefficient α")
    fig.suptitle(title)
    return fig


def gradcam_figure(maps: Mapping[str, np.ndarray], sequences: list[str], title: str) -> Figure:
    """Fig. 9: the critic's Grad-CAM over the generated and (when present) the target slices."""
    pairs = [("output", "gradcam_output")] + ([("target", "gradcam_target")] if "gradcam_target" in maps else [])
    if "gradcam_output" not in maps:
        raise ValueError("the explain file holds no Grad-CAM maps (the experiment has no critic)")
    n = len(maps["input"])
    fig = Figure(figsize=(3.0 * len(pairs) + 0.8, 2.8 * n + 0.8), layout="constrained")
    axes = fig.subplots(n, len(pairs), squeeze=False)
    for r in range(n):
        for c, (image, cam) in enumerate(pairs):
            ax = axes[r, c]
            ax.imshow(_explain_slice(maps, image, r), cmap="gray", origin="lower")
            im = ax.imshow(_explain_slice(maps, cam, r), cmap="jet", alpha=0.4, vmin=0, vmax=1, origin="lower")
            plain_axes(ax)
            if r == 0:
                ax.set_title(f"{'generated' if image == 'output' else 'research'} ({sequences[0]}) + Grad-CAM")
        axes[r, 0].set_ylabel(f"slice {int(maps['indices'][r])}")
    fig.colorbar(im, ax=axes[:, -1], fraction=0.046, label="Grad-CAM (normalised)")
    fig.suptitle(title)
    return fig


def segmentation_figure(
    flair: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    shown: tuple[int, ...],
    zooms: np.ndarray,
    title: str,
) -> Figure:
    """Figs. 11-12: labels ``shown`` (of 1-5) over FLAIR for each scan set (columns), axial and coronal (rows)."""
    mask = np.any([lab > 0 for lab in labels.values()], axis=0)
    centre = mask_centre(mask)
    cmap = ListedColormap([CLASS_COLOURS[v] for v in range(1, 6)])
    fig = Figure(figsize=(3.0 * len(flair), 6.4), layout="constrained")
    axes = fig.subplots(2, len(flair), squeeze=False)
    for c, name in enumerate(flair):
        lo, hi = display_window(flair[name], labels[name] > 0)
        lab = np.where(np.isin(labels[name], shown), labels[name], 0).astype(float)
        for r, view in enumerate(("axial", "coronal")):
            ax = axes[r, c]
            show_slice(ax, flair[name], centre, view, zooms, cmap="gray", vmin=lo, vmax=hi)
            overlay = np.ma.masked_equal(orthogonal_slices(lab, centre)[VIEWS[view]], 0)
            ax.imshow(
                overlay,
                cmap=cmap,
                vmin=0.5,
                vmax=5.5,
                alpha=0.55,
                origin="lower",
                aspect=slice_aspect(zooms, view),
                interpolation="nearest",
            )
            _label(ax, r, c, name, view)
    handles = [Patch(color=CLASS_COLOURS[v], label=CLASS_NAMES[_LABEL_CLASS[v]]) for v in shown]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(shown), frameon=False)
    fig.suptitle(title)
    return fig


def bland_altman_figure(points: pd.DataFrame, table: pd.DataFrame, methods: list[str], title: str) -> Figure:
    """Fig. 10: per class (rows) and method (columns), % difference from the research volume vs the pair mean.

    ``points``: subject, image (method), class, volume_ml, volume_ml_research; ``table``: from
    :func:`brainsr.report.tables.bland_altman_table`.
    """
    classes = [c for c in CLASS_NAMES if c in set(points["class"])]
    fig = Figure(figsize=(3.6 * len(methods) + 0.4, 2.8 * len(classes) + 0.6), layout="constrained")
    axes = fig.subplots(len(classes), len(methods), squeeze=False)
    for r, cls in enumerate(classes):
        for c, method in enumerate(methods):
            ax = axes[r, c]
            p = points[(points["class"] == cls) & (points.image == method)]
            mean = (p.volume_ml + p.volume_ml_research) / 2
            with np.errstate(divide="ignore", invalid="ignore"):
                pct = 100 * (p.volume_ml - p.volume_ml_research) / mean
            hue = "protocol" if "protocol" in p and len(p) else None
            sns.scatterplot(x=mean, y=pct, hue=p[hue] if hue else None, s=24, ax=ax, legend=False)
            row = table[(table["class"] == cls) & (table.method == method)]
            if len(row) and np.isfinite(row.bias_pct.iloc[0]):
                b, lo, hi = row.bias_pct.iloc[0], row.loa_low_pct.iloc[0], row.loa_high_pct.iloc[0]
                ax.axhline(b, color="tab:blue", label=f"bias {b:.1f} %")
                for limit in (lo, hi):
                    ax.axhline(limit, color="tab:red", ls="--")
                ax.legend(fontsize=7, loc="upper right", title=f"95 % LoA {lo:.1f}…{hi:.1f} %", title_fontsize=7)
            else:
                ax.text(
                    0.5,
                    0.9,
                    "fewer than 2 subjects:\nno limits of agreement",
                    transform=ax.transAxes,
                    ha="center",
                    va="top",
                    fontsize=7,
                )
            ax.axhline(0, color="0.6", lw=0.8)
            ax.set_xlabel("mean volume (ml)")
            ax.set_ylabel(f"{CLASS_NAMES[cls]}\ndifference (% of mean)" if c == 0 else "difference (% of mean)")
            if r == 0:
                ax.set_title(f"{method} vs research")
    fig.suptitle(title)
    return fig


def longitudinal_figure(volumes: pd.DataFrame, classes: tuple[str, ...], title: str) -> Figure:
    """Fig. 13: box plots over control subjects of each class volume per month of the repeated research scans."""
    fig = Figure(figsize=(3.6 * len(classes), 3.4), layout="constrained")
    axes = fig.subplots(1, len(classes), squeeze=False)[0]
    months = sorted(volumes.month.unique())
    for ax, cls in zip(axes, classes, strict=True):
        part = volumes[volumes["class"] == cls]
        sns.boxplot(data=part, x="month", y="volume_ml", order=months, color="0.85", width=0.5, fliersize=0, ax=ax)
        sns.stripplot(data=part, x="month", y="volume_ml", order=months, color="tab:blue", size=4, ax=ax)
        ax.set_xlabel("month")
        ax.set_ylabel("volume (ml)")
        ax.set_title(CLASS_NAMES[cls])
    fig.suptitle(title)
    return fig


def metric_distribution_figure(image: pd.DataFrame, methods: list[str], title: str) -> Figure:
    """Image metrics in the brain (MAE, PSNR, SSIM) of each test subject and sequence, per method (rows of the
    image-metrics table), coloured by acquisition protocol: the spread behind Table S1's means."""
    metrics = ("mae", "psnr", "ssim")
    shown = image[(image.region == "brain") & image.metric.isin(metrics) & image.method.isin(methods)]
    fig = Figure(figsize=(max(6.0, 0.55 * len(methods) + 2.5), 2.9 * len(metrics) + 0.6), layout="constrained")
    axes = fig.subplots(len(metrics), 1, squeeze=False)[:, 0]
    for ax, metric in zip(axes, metrics, strict=True):
        part = shown[shown.metric == metric]
        if part.empty:
            ax.text(0.5, 0.5, f"no {metric} values", transform=ax.transAxes, ha="center")
            continue
        sns.boxplot(data=part, x="method", y="value", order=methods, color="0.9", fliersize=0, ax=ax)
        sns.stripplot(data=part, x="method", y="value", order=methods, hue="protocol", dodge=True, size=3.5, ax=ax)
        ax.set_ylabel({"mae": "MAE", "psnr": "PSNR (dB)", "ssim": "SSIM"}[metric])
        ax.set_xlabel("")
        ax.tick_params(axis="x", labelrotation=45)
        if ax is not axes[0] and ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.suptitle(title)
    return fig
