"""The paper's tables and figures from the workflow's evaluation files (``brainsr report tables|figures``).

- :func:`write_group_tables`: the group tables (Tables 1, 2, S1, S3-S6, volumes, agreement with the ground truth)
  and the Bland-Altman (Fig. 10) and longitudinal (Fig. 13) data and figures;
- :func:`write_subject_figures`: Figs. 5-9, 11 and 12 of one test subject.

The blinded visual-rating sheet (paper 3.8.4) is :mod:`brainsr.report.rating`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from brainsr.io import atomic_savefig, atomic_write_text, atomic_write_tsv
from brainsr.report import tables as tab
from brainsr.workflow.layout import GROUP_FIGURES, GROUP_TABLES, SUBJECT_FIGURES

__all__ = [
    "GROUP_FIGURES",
    "GROUP_TABLES",
    "REPORT_TABLES",
    "SUBJECT_FIGURES",
    "figure_sequences",
    "write_group_tables",
    "write_subject_figures",
]

#: Headings of the group tables the HTML report shows, written as <stem>.html pages by ``--html``.
REPORT_TABLES = {
    "table1": "Table 1 (paper 4.6): U-Net, ViT and Model 0 against their interpolation baseline",
    "tableS1": "Table S1 (paper 4.1-4.5): every experiment and interpolation baseline",
    "table2": "Table 2 (paper 4.9.1): clinical quality metrics, mean absolute error against the research scan",
    "tableS3": "Table S3 (paper 4.9.2): CSF, agreement with the research scan's segmentation",
    "tableS4": "Table S4 (paper 4.9.2): veins and sinuses, agreement with the research scan's segmentation",
    "tableS5": "Table S5 (paper 4.9.2): pial layers, agreement with the research scan's segmentation",
    "tableS6": "Table S6 (paper 4.9.2): WMH, agreement with the research scan's segmentation",
    "truth": "Beyond the paper: Dice of each class against the synthetic ground truth",
    "fig10": "Fig. 10 numbers (paper 4.9.2): Bland-Altman bias and 95 % limits of agreement of class volumes (%)",
    "fig13": "Fig. 13 numbers (paper 4.9.3): control volumes per month and median % difference from baseline",
    "findings": "The paper's claims checked on this run",
    "qc_gate": "Preprocessing QC gate (beyond the paper, which checked every mask by hand): each session's decision",
    "qc_failed": "Image metrics of the evaluated subjects that the QC gate failed (left out of every table above)",
}
_IMAGE_COLUMNS = ("mae", "nmse", "nmse_paper", "psnr", "ssim")


def _entries(spec: Mapping) -> dict[str, list[dict]]:
    """Every evaluation file the group tables read, with its key columns, from the spec's path patterns."""
    pat, ses = spec["patterns"], spec["sessions"]
    out: dict[str, list[dict]] = {"image": [], "quality": [], "volumes": [], "agreement": [], "controls": []}
    for subject, protocol in spec["subjects"].items():
        key = {"subject": subject, "protocol": protocol}
        for method, info in spec["methods"].items():
            fmt = dict(subject=subject, session=ses["clinical"], desc=method)
            row = {**key, "image": method, "prep": info["prep"]}
            out["image"].append({**key, "method": method, "prep": info["prep"], "file": pat["image"].format(**fmt)})
            for kind in ("quality", "volumes", "agreement"):
                out[kind].append({**row, "file": pat[kind].format(**fmt)})
        for prep in sorted({info["prep"] for info in spec["methods"].values()}):
            fmt = dict(subject=subject, session=ses["research"], desc=prep)
            row = {**key, "image": "research", "prep": prep}
            kinds = ("quality", "volumes", "agreement") if spec["truth"] else ("quality", "volumes")
            for kind in kinds:
                out[kind].append({**row, "file": pat[kind].format(**fmt)})
    for subject, sessions in spec["controls"].items():
        for session, month in sessions.items():
            fmt = dict(subject=subject, session=session, desc=spec["primary"])
            out["controls"].append(
                {"subject": subject, "session": session, "month": month, "file": pat["volumes"].format(**fmt)}
            )
    return out


def _image_table(image: pd.DataFrame, methods: Mapping, models: Mapping, names: list[str]) -> pd.DataFrame:
    """Mean ± SD (subjects × sequences) of the brain-mask image metrics of ``names``, then the parameter count and
    settings columns (the metrics first, as in the paper's Table 1)."""
    brain = image[(image.region == "brain") & image.method.isin(names)]
    table = brain.groupby(["method", "metric"], sort=False)["value"].apply(tab.mean_sd).unstack("metric")
    table = table.reindex(index=names, columns=list(_IMAGE_COLUMNS)).reset_index()
    settings = []
    for name in names:
        info = methods[name]
        s = info.get("settings", {})
        row = {"method": name, "kind": info["kind"], "prep": info["prep"]}
        if info["kind"] == "experiment":
            row.update({k: s.get(k) for k in ("model", "input", "channels", "critic", "critic_lambda", "filters")})
            summary = tab.read_json(models[name]) if name in models else {}
            row["parameters"] = summary.get("parameters")
        settings.append(row)
    merged = pd.DataFrame(settings).merge(table, on="method")
    first = ["method", *_IMAGE_COLUMNS, "parameters"]
    return merged[[c for c in first if c in merged] + [c for c in merged if c not in first]]


def _experiments(methods: Mapping) -> list[str]:
    """The trained experiments among the methods (not the interpolation baselines), in spec order."""
    return [m for m in methods if methods[m]["kind"] == "experiment"]


def _gate_frames(spec: Mapping, failed: list[str], gate: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The preprocessing QC gate's table (how each session was decided, and whether its results are reported with
    the rest) and the image metrics of the evaluated subjects it failed, reported apart from the group tables."""
    from brainsr.preprocess.gate import LEDGER_COLUMNS

    if len(gate):
        gate = gate[list(LEDGER_COLUMNS)].assign(reported=["apart" if s in failed else "" for s in gate.subject])
    else:
        gate = pd.DataFrame({"note": ["no preprocessing QC gate table"]})
    apart = {**spec, "subjects": {s: p for s, p in spec["subjects"].items() if s in failed}}
    image = tab.image_long(_entries(apart)["image"]) if apart["subjects"] else pd.DataFrame()
    if len(image):
        brain = image[image.region == "brain"]
        image = brain.pivot_table(index=["subject", "protocol", "method", "sequence"], columns="metric", values="value")
        image = image.reset_index()
    else:
        image = pd.DataFrame({"note": ["no evaluated subject failed the preprocessing QC gate"]})
    return {"qc_gate": gate, "qc_failed": image}


def _gate_table(spec: Mapping) -> pd.DataFrame:
    """Every session's QC-gate decision: the training and validation sessions' as frozen by the gate job, the
    others (test subjects, controls) decided now, against the same ledger (brainsr.preprocess.gate)."""
    from brainsr.preprocess.gate import update_gate

    gate = spec.get("qc_gate") or {}
    if not gate.get("quality"):
        return pd.DataFrame()
    return update_gate(gate["quality"], gate["ledger"], gate["settings"], gate["prep"])


def _group_frames(spec: Mapping) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Every group table by its ``GROUP_TABLES`` key, from the evaluation files of the spec, and the control
    subjects' volumes (Fig. 13). Subjects that the preprocessing QC gate failed are left out of every group table
    and reported apart (``qc_failed``)."""
    from brainsr.preprocess.gate import failed_subjects

    table = _gate_table(spec)
    failed = failed_subjects(spec.get("qc_gate"), table if len(table) else None)
    gated = _gate_frames(spec, failed, table)
    spec = {
        **spec,
        "subjects": {s: p for s, p in spec["subjects"].items() if s not in failed},
        "controls": {s: v for s, v in spec["controls"].items() if s not in failed},
    }
    files = _entries(spec)
    methods = spec["methods"]
    out: dict[str, pd.DataFrame] = {}
    image = tab.image_long(files["image"])
    out["image"] = image
    experiments = _experiments(methods)
    table1 = [m for m in spec.get("table1", []) if m in methods]
    baselines = sorted({f"interp{methods[m]['prep']}" for m in table1} & set(methods))
    out["table1"] = _image_table(image, methods, spec.get("models", {}), baselines + table1)
    out["tableS1"] = _image_table(image, methods, spec.get("models", {}), list(methods))
    quality = tab.quality_long(files["quality"])
    out["quality"] = quality
    errors = tab.quality_errors(quality)
    by_protocol = tab.summary(errors, ["protocol", "image"], "metric", values="error")
    overall = tab.summary(errors.assign(protocol="all"), ["protocol", "image"], "metric", values="error")
    out["table2"] = pd.concat([by_protocol, overall], ignore_index=True).rename(columns={"image": "method"})
    volumes = tab.volumes_long(files["volumes"])
    out["volumes"] = volumes
    agreement = tab.agreement_long(files["agreement"]).rename(columns={"image": "method"})
    out["agreement"] = agreement
    for key, cls in tab.AGREEMENT_TABLES.items():
        out[key] = tab.agreement_table(agreement, cls, "research")
    truth = agreement[agreement.reference == "truth"] if len(agreement) else agreement
    out["truth"] = (
        tab.summary(truth[truth.metric == "dice"], ["method"], "class")
        if len(truth)
        else pd.DataFrame({"note": ["no ground truth in this dataset"]})
    )
    out["fig10"] = tab.bland_altman_table(volumes)
    controls = tab.volumes_long(files["controls"])
    out["fig13"] = (
        tab.longitudinal_table(controls)
        if len(controls)
        else pd.DataFrame({"note": ["no control subjects with repeated research scans"]})
    )

    showcase = spec.get("showcase") or (experiments[:1] or list(methods))[0]
    rivals = [m for m in table1 if m != showcase and methods[m]["kind"] == "experiment"]
    baseline = f"interp{methods[showcase]['prep']}"
    interps = [m for m in methods if methods[m]["kind"] == "interpolation"]
    out["findings"] = pd.concat(
        [
            tab.findings(image, errors, agreement, out["fig10"], showcase, baseline, rivals),
            tab.subject_findings(image, agreement, showcase, baseline, interps, spec.get("training_protocols", {})),
        ],
        ignore_index=True,
    )
    return {**out, **gated}, controls


def _write_tables(out: Mapping[str, pd.DataFrame], tables: Path, html: str | Path | None) -> dict[str, Path]:
    """Each table as a TSV file under ``tables`` and, with ``html``, the REPORT_TABLES as HTML pages there."""
    from brainsr.report.html import table_html

    written = {}
    for key, frame in out.items():
        written[key] = atomic_write_tsv(frame, tables / GROUP_TABLES[key], na_rep="n/a")
        if html is not None and key in REPORT_TABLES:
            page = table_html(frame, REPORT_TABLES[key], str(tables / GROUP_TABLES[key]))
            written[f"{key}_html"] = atomic_write_text(page, Path(html) / f"{Path(GROUP_TABLES[key]).stem}.html")
    return written


def _write_group_figures(
    spec: Mapping, out: Mapping[str, pd.DataFrame], controls: pd.DataFrame, figures: Path
) -> dict[str, Path]:
    """The Fig. 10 (Bland-Altman) and Fig. 13 (longitudinal) figures and the metrics-by-protocol figure."""
    from brainsr.report import figures as figs

    methods = spec["methods"]
    experiments = _experiments(methods)
    written = {}
    points = tab.paired_volumes(out["volumes"])
    shown = [m for m in spec.get("figure_methods", []) if m in methods] or experiments[:1] or list(methods)[:1]
    fig = figs.bland_altman_figure(
        points,
        out["fig10"],
        shown,
        f"Fig. 10: Bland-Altman agreement of class volumes with the research scan ({len(spec['subjects'])} subjects)",
    )
    written["fig10_png"] = atomic_savefig(fig, figures / GROUP_FIGURES["fig10"], dpi=110)
    if len(controls):
        fig = figs.longitudinal_figure(
            controls,
            ("csf", "sinus", "pial"),
            f"Fig. 13: volumes in the repeated research scans of {controls.subject.nunique()} control subject(s)",
        )
    else:
        fig = figs.note_figure("Fig. 13: no control subjects with repeated research scans", (5, 2))
    written["fig13_png"] = atomic_savefig(fig, figures / GROUP_FIGURES["fig13"], dpi=110)
    fig = figs.metric_distribution_figure(
        out["image"],
        list(methods),
        f"Image metrics in the brain per test subject and sequence ({len(spec['subjects'])} subjects)",
    )
    written["metrics_png"] = atomic_savefig(fig, figures / GROUP_FIGURES["metrics"], dpi=110)
    return written


def write_group_tables(
    spec: Mapping, tables: str | Path, figures: str | Path, html: str | Path | None = None
) -> dict[str, Path]:
    """Every group table, the Fig. 10 and 13 figures and the metrics-by-protocol figure, and with *html* the
    REPORT_TABLES as HTML pages there (keys ``<key>_html``); returns ``{key: path}``."""
    tables, figures = Path(tables), Path(figures)
    out, controls = _group_frames(spec)
    written = _write_tables(out, tables, html)
    written.update(_write_group_figures(spec, out, controls, figures))
    return written


def figure_sequences(spec: Mapping) -> list[str]:
    """The sequences of a figure spec in the model's channel order (``spec["sequences"]``).

    The workflow writes specs with sorted keys, so the order of ``spec["images"]`` is alphabetical (FLAIR first);
    the explain file's channel 0, shown in Figs. 8 and 9, is the first sequence of the channel order (T1w).
    """
    order = list(spec.get("sequences") or spec["images"])
    missing = [q for q in order if q not in spec["images"]]
    if missing:
        raise ValueError(f"figure spec: no images for {', '.join(missing)}")
    return order


def write_subject_figures(spec: Mapping, figures: str | Path) -> dict[str, Path]:
    """Figs. 5-9, 11 and 12 of one subject (spec built by the workflow's ``report_figures`` rule)."""
    from brainsr.base.images import load_mask
    from brainsr.report import figures as figs

    figures = Path(figures)
    subject, method, baseline = spec["subject"], spec["method"], spec["baseline"]
    names = {"input": f"interpolated ({baseline})", "generated": f"generated ({method})", "target": "research"}
    load = functools.lru_cache(maxsize=None)(figs.load_canonical)  # a file shown in two figures is read once
    seqs = figure_sequences(spec)
    rows, zooms = {}, None
    for seq in seqs:
        rows[seq] = {}
        for role in ("input", "generated", "target"):
            rows[seq][names[role]], zooms = load(spec["images"][seq][role])
    mask_img = load_mask(spec["mask"])[1]
    import nibabel as nib

    mask = np.asarray(nib.as_closest_canonical(mask_img).dataobj) > 0.5
    written = {}
    for key, view in (("fig05", "axial"), ("fig06", "coronal")):
        fig = figs.comparison_figure(
            rows, mask, zooms, view, f"Fig. {int(key[3:])}: sub-{subject}, mid-{view} input / generated / target"
        )
        written[key] = atomic_savefig(fig, figures / SUBJECT_FIGURES[key], dpi=110)
    fig = figs.difference_figure(rows, "research", mask, zooms, f"Fig. 7: sub-{subject}, difference maps (mid-axial)")
    written["fig07"] = atomic_savefig(fig, figures / SUBJECT_FIGURES["fig07"], dpi=110)
    maps = dict(np.load(spec["explain"]))
    for key, make, what in (
        ("fig08", figs.attention_figure, "attention gates"),
        ("fig09", figs.gradcam_figure, "critic Grad-CAM"),
    ):
        try:
            fig = make(maps, seqs, f"Fig. {int(key[3:])}: sub-{subject}, {method}: {what}")
        except ValueError as exc:  # e.g. a U-Net without gates: say so in the figure
            fig = figs.note_figure(f"Fig. {int(key[3:])} ({method}): {exc}")
        written[key] = atomic_savefig(fig, figures / SUBJECT_FIGURES[key], dpi=110)
    flair, labels = {}, {}
    for name, files in spec["segmentations"].items():
        flair[name], seg_zooms = load(files["flair"])
        labels[name] = np.rint(load(files["dseg"])[0]).astype(int)
    for key, shown, what in (("fig11", (1, 2, 3, 4), "multispectral classes"), ("fig12", (5,), "WMH")):
        title = f"Fig. {key[3:]}: sub-{subject}, {what} on FLAIR"
        fig = figs.segmentation_figure(flair, labels, shown, seg_zooms, title)
        written[key] = atomic_savefig(fig, figures / SUBJECT_FIGURES[key], dpi=110)
    return written
