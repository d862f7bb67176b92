"""Tests of the evaluation's group tables, agreement files, rating sheet and figures on hand-made examples."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainsr.metrics.evaluate import evaluate_agreement, read_lookup
from brainsr.report import tables as tab
from brainsr.report.build import figure_sequences
from brainsr.report.figures import (
    attention_figure,
    bland_altman_figure,
    gradcam_figure,
    longitudinal_figure,
    metric_distribution_figure,
    segmentation_figure,
)
from brainsr.report.rating import write_rating_sheet


def _save(data, path, zooms=(1.0, 1.0, 1.0)):
    nib.save(nib.Nifti1Image(np.asarray(data), np.diag([*zooms, 1.0])), path)
    return str(path)


def test_agreement_with_research_and_finer_ground_truth_by_hand(tmp_path):
    # a strip of 10 voxels (2 mm) repeated over a 10 x 2 x 2 volume (ratios as for one strip);
    # classes 1 csf, 2 sinus, 3 pial, 4 tissue, 5 wmh
    seg = np.broadcast_to(np.array([1, 1, 1, 4, 4, 4, 5, 5, 3, 0]).reshape(10, 1, 1), (10, 2, 2))
    ref = np.broadcast_to(np.array([1, 1, 4, 4, 4, 5, 5, 5, 3, 2]).reshape(10, 1, 1), (10, 2, 2))
    seg_path = _save(seg.astype(np.uint8), tmp_path / "seg.nii.gz", (2, 2, 2))
    ref_path = _save(ref.astype(np.uint8), tmp_path / "ref.nii.gz", (2, 2, 2))
    # ground truth on a 1 mm grid: each 2 mm voxel is two 1 mm voxels; names from a lookup table
    truth = np.repeat(np.array([7, 7, 7, 3, 3, 3, 9, 9, 8, 0]), 2).reshape(20, 1, 1)
    truth_path = _save(np.broadcast_to(truth, (20, 4, 4)).astype(np.uint8), tmp_path / "truth.nii.gz")
    lookup = tmp_path / "lookup.tsv"
    pd.DataFrame(
        {"index": [7, 2, 8, 3, 4, 5, 9, 6], "name": ["csf", "sinus", "pial", "gm", "wm", "deep_gm", "wmh", "stroke"]}
    ).to_csv(lookup, sep="\t", index=False)
    out = evaluate_agreement(seg_path, ref_path, truth_path, str(lookup))
    res = out["research"]
    # CSF: seg {0,1,2}, ref {0,1}: TP 2, FP 1, FN 0 -> Dice 4/5, Jaccard 2/3; region = 10 voxels (union of brains)
    assert res["csf"]["dice"] == pytest.approx(0.8)
    assert res["csf"]["jaccard"] == pytest.approx(2 / 3)
    assert res["csf"]["tpf"] == pytest.approx(1.0)
    assert res["csf"]["ppv"] == pytest.approx(2 / 3)
    assert res["csf"]["tnf"] == pytest.approx(7 / 8)  # 8 negatives in the region, one false positive
    # tissue = labels 4 and 5: seg {3..7}, ref {2..7}: TP 5, FN 1 -> Dice 10/11
    assert res["tissue"]["dice"] == pytest.approx(10 / 11)
    # WMH: seg {6,7}, ref {5,6,7} -> Dice 4/5; sinus absent in seg -> Dice 0, PPV undefined
    assert res["wmh"]["dice"] == pytest.approx(0.8)
    assert res["sinus"]["dice"] == 0.0 and np.isnan(res["sinus"]["ppv"])
    gt = out["truth"]
    assert gt["csf"]["dice"] == pytest.approx(1.0)  # truth csf {0,1,2} once on the 2 mm grid
    assert gt["wmh"]["dice"] == pytest.approx(1.0)
    assert gt["pial"]["dice"] == pytest.approx(1.0)
    assert read_lookup(str(lookup))["wmh"] == 9


def test_agreement_needs_a_reference_and_a_lookup(tmp_path):
    seg = _save(np.arange(64, dtype=np.uint8).reshape(4, 4, 4) % 6, tmp_path / "seg.nii.gz")
    with pytest.raises(ValueError, match="research segmentation, a ground truth"):
        evaluate_agreement(seg)
    with pytest.raises(ValueError, match="lookup"):
        evaluate_agreement(seg, truth=seg)


def _quality_rows():
    rows = []
    for subject, protocol, ref, m0, interp in (("P1", "P1", 0.5, 0.45, 0.8), ("P2", "P2", 0.4, 0.5, 0.1)):
        for image, value in (("research", ref), ("model0", m0), ("interpaffinelinear", interp)):
            rows.append(
                {
                    "subject": subject,
                    "protocol": protocol,
                    "image": image,
                    "prep": "affinelinear",
                    "sequence": "T1w",
                    "metric": "cjv",
                    "value": value,
                }
            )
    return pd.DataFrame(rows)


def test_quality_errors_by_hand():
    errors = tab.quality_errors(_quality_rows())
    got = errors.set_index(["subject", "image"])["error"]
    assert got["P1", "model0"] == pytest.approx(0.05)
    assert got["P1", "interpaffinelinear"] == pytest.approx(0.3)
    assert got["P2", "model0"] == pytest.approx(0.1)
    assert got["P2", "interpaffinelinear"] == pytest.approx(0.3)
    overall = tab.summary(errors, ["image"], "metric", values="error").set_index("image")["cjv"]
    # mean 0.075, SD (ddof 1) of (0.05, 0.1) = 0.03536
    assert overall["model0"] == "0.075 ± 0.035"
    # a method without its research counterpart is an error, not a silent drop
    missing = _quality_rows()
    missing = missing[~((missing.subject == "P2") & (missing.image == "research"))]
    with pytest.raises(ValueError, match="research-scan counterpart"):
        tab.quality_errors(missing)


def _volumes(research, method, cls="csf"):
    rows = []
    for i, (r, m) in enumerate(zip(research, method, strict=True)):
        rows.append({"subject": f"P{i}", "prep": "affinelinear", "image": "research", "class": cls, "volume_ml": r})
        rows.append({"subject": f"P{i}", "prep": "affinelinear", "image": "model0", "class": cls, "volume_ml": m})
    return pd.DataFrame(rows)


def test_bland_altman_table_by_hand_and_with_one_subject():
    # differences as % of the pair mean: (110-90)/100 = 20 %, (95-105)/100 = -10 %, (100-100)/100 = 0 %
    table = tab.bland_altman_table(_volumes([90, 105, 100], [110, 95, 100]))
    row = table.iloc[0]
    assert row["n"] == 3 and row["bias_pct"] == pytest.approx(10 / 3)
    sd = np.std([20, -10, 0], ddof=1)
    assert row["sd_pct"] == pytest.approx(sd)
    assert row["loa_low_pct"] == pytest.approx(10 / 3 - 1.96 * sd)
    assert row["loa_high_pct"] == pytest.approx(10 / 3 + 1.96 * sd)
    one = tab.bland_altman_table(_volumes([90], [110])).iloc[0]
    assert one["n"] == 1 and np.isnan(one["bias_pct"]) and one["note"]


def test_longitudinal_table_median_percent_from_baseline():
    rows = []
    for subject, volumes in (("C1", (10.0, 11.0)), ("C2", (20.0, 19.0)), ("C3", (5.0, 5.5))):
        for month, v in zip((0, 2), volumes, strict=True):
            rows.append({"subject": subject, "month": month, "class": "csf", "volume_ml": v})
    table = tab.longitudinal_table(pd.DataFrame(rows)).set_index(["class", "month"])
    assert table.loc[("csf", 0), "median_diff_pct"] == 0.0
    assert table.loc[("csf", 2), "median_diff_pct"] == pytest.approx(10.0)  # median of 10, -5, 10
    assert table.loc[("csf", 2), "n"] == 3


def test_findings_state_which_claims_hold():
    image = pd.DataFrame(
        [
            {"method": m, "metric": k, "region": "brain", "value": v}
            for m, values in (("model0", (0.01, 30, 0.9)), ("interpaffinelinear", (0.02, 25, 0.95)))
            for k, v in zip(("mae", "psnr", "ssim"), values, strict=True)
        ]
    )
    errors = tab.quality_errors(_quality_rows())
    agreement = pd.DataFrame(
        [
            {"method": "model0", "reference": "research", "class": "csf", "metric": "dice", "value": 0.8},
            {"method": "interpaffinelinear", "reference": "research", "class": "csf", "metric": "dice", "value": 0.7},
        ]
    )
    bland = tab.bland_altman_table(_volumes([90, 105, 100], [110, 95, 100]))
    out = tab.findings(image, errors, agreement, bland, "model0", "interpaffinelinear").set_index("claim")
    holds = out["holds"]
    assert holds["MAE of model0 better than interpaffinelinear"] == "yes"
    assert holds["SSIM of model0 better than interpaffinelinear"] == "no"
    assert holds["|cjv - research| of model0 smaller than of interpaffinelinear"] == "yes"  # 0.075 < 0.3
    assert holds["Dice of csf with the research segmentation: model0 higher than interpaffinelinear"] == "yes"
    assert holds["Dice of wmh with the research segmentation: model0 higher than interpaffinelinear"] == "n/a"
    assert (out["method_value"]["MAE of model0 better than interpaffinelinear"]) == pytest.approx(0.01)


def test_subject_findings_compare_each_qualifying_subject_with_its_best_interpolation():
    """Issue 20: per test subject of a protocol with >= 3 training subjects, model0 against the interpolation with
    that subject's highest brain PSNR (means over sequences): +2 dB PSNR, lower MAE, higher SSIM; WMH Dice with
    the truth averaged over those subjects. S3's protocol has 1 training subject: left out."""
    psnr = {
        "S1": {"model0": (30, 32), "interpaffinelinear": (28, 28), "interprigidsinc": (29, 29)},  # +2.0 over rigidsinc
        "S2": {"model0": (30, 30), "interpaffinelinear": (29, 29), "interprigidsinc": (27, 27)},  # +1.0
        "S3": {"model0": (40, 40), "interpaffinelinear": (20, 20), "interprigidsinc": (20, 20)},
    }
    protocol = {"S1": "P2", "S2": "P2", "S3": "P5"}
    rows = []
    for subject, methods in psnr.items():
        for method, values in methods.items():
            for seq, value in zip(("T1w", "T2w"), values, strict=True):
                mae, ssim = (0.01, 0.95) if method == "model0" else (0.02, 0.9)
                for metric, v in (("psnr", value), ("mae", mae), ("ssim", ssim), ("psnr", np.nan)):
                    region = "brain" if np.isfinite(v) else "head"
                    rows.append(
                        {
                            "subject": subject,
                            "protocol": protocol[subject],
                            "method": method,
                            "sequence": seq,
                            "metric": metric,
                            "region": region,
                            "value": v,
                        }
                    )
    dice = {
        ("S1", "model0"): 0.5,
        ("S1", "interpaffinelinear"): 0.4,
        ("S2", "model0"): 0.3,
        ("S2", "interpaffinelinear"): 0.5,
        ("S3", "model0"): 0.9,
        ("S3", "interpaffinelinear"): 0.0,
    }
    agreement = pd.DataFrame(
        [
            {"subject": s, "method": m, "reference": "truth", "class": "wmh", "metric": "dice", "value": v}
            for (s, m), v in dice.items()
        ]
        + [{"subject": "S1", "method": "model0", "reference": "research", "class": "wmh", "metric": "dice", "value": 0}]
    )
    out = tab.subject_findings(
        pd.DataFrame(rows),
        agreement,
        "model0",
        "interpaffinelinear",
        ["interpaffinelinear", "interprigidsinc"],
        {"P2": 12, "P5": 1},
    )
    assert list(out.section) == ["4.5 per subject"] * 3 + ["4.9.2 WMH"]
    s1, s2, every, wmh = (out.iloc[i] for i in range(4))
    assert s1.claim.startswith("S1 (P2, 12 training subjects)") and s1.holds == "yes"
    assert (s1.method_value, s1.comparison_value) == (31.0, 29.0) and "interprigidsinc; PSNR +2.00 dB" in s1.note
    assert s2.holds == "no" and (s2.method_value, s2.comparison_value) == (30.0, 29.0)
    assert every.holds == "no" and (every.method_value, every.comparison_value) == (1.0, 2.0)
    assert "qualifying protocols: P2" in every.note
    assert wmh.holds == "no" and wmh.method_value == pytest.approx(0.4) and wmh.comparison_value == pytest.approx(0.45)
    none = tab.subject_findings(pd.DataFrame(rows), agreement, "model0", "interpaffinelinear", [], {"P2": 2})
    assert list(none.holds) == ["n/a", "n/a"]


def test_rating_sheet_is_shuffled_coded_and_keeps_no_header_text(tmp_path):
    spec = {}
    for subject in ("P1", "P2"):
        spec[subject] = {}
        for name in ("research", "interpolated", "upsampled"):
            spec[subject][name] = {}
            for seq in ("FLAIR", "T1w"):
                img = nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 6)).astype(np.float32), np.eye(4))
                img.header["descrip"] = b"Patient Jane Doe 1950-01-01"
                img.header["aux_file"] = b"MRN123456"
                path = tmp_path / f"{subject}_{name}_{seq}.nii.gz"
                nib.save(img, path)
                spec[subject][name][seq] = str(path)
    sheet_path, key_path = tmp_path / "rating" / "sheet.csv", tmp_path / "key" / "key.csv"
    key = write_rating_sheet(spec, tmp_path / "rating" / "images", sheet_path, key_path, seed=3)
    sheet = pd.read_csv(sheet_path, keep_default_na=False)
    assert list(sheet["item"]) == [f"item-{i:03d}" for i in range(1, 7)]
    assert {"score_FLAIR", "score_T1w", "comments"} <= set(sheet.columns)
    assert (sheet["score_T1w"] == "").all()
    text = sheet_path.read_text()
    for name in ("research", "interpolated", "upsampled"):
        assert name not in text  # nothing on the sheet gives the scan set away
    order = list(zip(key.subject, key.scan_set, strict=True))
    assert sorted(order) == sorted((s, n) for s in spec for n in spec[s])
    assert order != [(s, n) for s in spec for n in spec[s]]  # shuffled
    again = write_rating_sheet(spec, tmp_path / "r2", tmp_path / "s2.csv", tmp_path / "k2.csv", seed=3)
    assert list(again.scan_set) == list(key.scan_set)  # seeded
    for f in (tmp_path / "rating" / "images").glob("*.nii.gz"):
        header = nib.load(f).header
        assert b"Jane" not in header["descrip"].tobytes() and b"MRN" not in header["aux_file"].tobytes()
    pngs = list((tmp_path / "rating" / "images").glob("item-*.png"))
    assert len(pngs) == 6 and min(p.stat().st_size for p in pngs) > 1000


def test_group_figures_are_written(tmp_path):
    volumes = pd.concat([_volumes([90, 105, 100], [110, 95, 100], c) for c in ("csf", "pial")], ignore_index=True)
    table = tab.bland_altman_table(volumes)
    ref = volumes[volumes.image == "research"][["subject", "prep", "class", "volume_ml"]]
    points = volumes[volumes.image != "research"].merge(
        ref, on=["subject", "prep", "class"], suffixes=("", "_research")
    )
    fig = bland_altman_figure(points, table, ["model0"], "Fig. 10")
    assert len(fig.axes) == 2
    path = tmp_path / "fig10.png"
    fig.savefig(path)
    assert path.stat().st_size > 1000
    controls = pd.DataFrame(
        [
            {"subject": s, "month": m, "class": c, "volume_ml": 10 + m}
            for s in ("C1", "C2")
            for m in (0, 2)
            for c in ("csf", "sinus", "pial")
        ]
    )
    fig13 = longitudinal_figure(controls, ("csf", "sinus", "pial"), "Fig. 13")
    assert len(fig13.axes) == 3
    strip = np.concatenate([c.get_offsets()[:, 1] for c in fig13.axes[0].collections])
    assert sorted(strip) == [10, 10, 12, 12]  # every control and month drawn once (strip plot over the boxes)
    image = pd.DataFrame(
        [
            {"subject": s, "protocol": p, "method": m, "sequence": q, "metric": k, "region": r, "value": 1.0}
            for s, p in (("P1", "P2"), ("P2", "P2"), ("P3", "P3"))
            for m in ("interpaffinelinear", "model0")
            for q in ("T1w", "FLAIR")
            for k in ("mae", "psnr", "ssim", "nmse")
            for r in ("brain", "fov")
        ]
    )
    fig = metric_distribution_figure(image, ["interpaffinelinear", "model0"], "metrics")
    assert [ax.get_ylabel() for ax in fig.axes] == ["MAE", "PSNR (dB)", "SSIM"]
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["P2", "P3"] and fig.axes[1].get_legend() is None
    # every brain value of one metric is drawn once: 3 subjects x 2 methods x 2 sequences
    assert sum(len(c.get_offsets()) for c in fig.axes[0].collections) == 12
    flair = np.random.default_rng(1).random((12, 12, 8))
    labels = np.zeros((12, 12, 8), int)
    labels[3:9, 3:9, 2:6] = 4
    labels[5:7, 5:7, 3:5] = 5
    fig = segmentation_figure(
        {"research": flair, "model0": flair}, {"research": labels, "model0": labels}, (5,), np.ones(3), "Fig. 12"
    )
    assert len(fig.axes) == 4


def test_report_tables_cli_on_a_two_subject_example(tmp_path):
    """`brainsr report tables` from hand-written evaluation files: every table and both figures are written."""
    from brainsr.report.build import GROUP_FIGURES, GROUP_TABLES, REPORT_TABLES, write_group_tables

    def dump(obj, name):
        path = tmp_path / "ev" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj))

    methods = {
        "model0": {"prep": "affinelinear", "kind": "experiment", "settings": {"model": "attention_unet"}},
        "interpaffinelinear": {"prep": "affinelinear", "kind": "interpolation", "settings": {}},
    }
    for i, subject in enumerate(("P1", "P2")):
        for desc, session in (("model0", "clinical"), ("interpaffinelinear", "clinical"), ("affinelinear", "research")):
            shift = 0.01 * (i + 1) * (desc != "affinelinear") * (1 + (desc == "interpaffinelinear"))
            if session == "clinical":
                dump(
                    {"T1w": {"mae_brain": shift, "ssim_brain": 1 - shift, "psnr_brain": 30, "mae_fov": shift}},
                    f"{subject}_{session}_{desc}_image.json",
                )
            dump({"T1w": {"cjv": 0.5 + shift, "efc": 0.4}}, f"{subject}_{session}_{desc}_quality.json")
            dump(
                {"csf_ml": 100 + 100 * shift, "pial_ml": 50.0, "tissue_ml": 900.0, "wmh_ml": 5.0},
                f"{subject}_{session}_{desc}_volumes.json",
            )
            dump(
                {"research": {"csf": {"dice": 0.9 - shift, "jaccard": 0.8}}, "truth": {"csf": {"dice": 0.8}}},
                f"{subject}_{session}_{desc}_agreement.json",
            )
    dump({"parameters": 1234}, "model.json")
    dump({"csf_ml": 100.0, "sinus_ml": 3.0, "pial_ml": 50.0}, "C1_month00_affinelinear_volumes.json")
    dump({"csf_ml": 104.0, "sinus_ml": 3.0, "pial_ml": 45.0}, "C1_month02_affinelinear_volumes.json")
    pattern = str(tmp_path / "ev" / "{subject}_{session}_{desc}_KIND.json")
    spec = {
        "subjects": {"P1": "P1", "P2": "P2"},
        "methods": methods,
        "models": {"model0": str(tmp_path / "ev" / "model.json")},
        "table1": ["model0"],
        "controls": {"C1": {"month00": 0, "month02": 2}},
        "primary": "affinelinear",
        "showcase": "model0",
        "figure_methods": ["model0"],
        "truth": True,
        "sessions": {"clinical": "clinical", "research": "research"},
        "patterns": {k: pattern.replace("KIND", k) for k in ("image", "quality", "volumes", "agreement")},
    }
    written = write_group_tables(spec, tmp_path / "tables", tmp_path / "figures", tmp_path / "html")
    for name in GROUP_TABLES.values():
        assert (tmp_path / "tables" / name).stat().st_size > 0, name
    # the tables the HTML report shows, as pages it can show inline
    assert sorted(p.name for p in (tmp_path / "html").iterdir()) == sorted(
        GROUP_TABLES[k].replace(".tsv", ".html") for k in REPORT_TABLES
    )
    page = written["table1_html"].read_text()
    assert "<td>0.015 ± 0.0071</td>" in page and "<td>1234</td>" in page and REPORT_TABLES["table1"] in page
    assert str(tmp_path / "tables" / GROUP_TABLES["table1"]) in page
    for name in GROUP_FIGURES.values():
        assert (tmp_path / "figures" / name).stat().st_size > 1000, name
    table1 = pd.read_csv(written["table1"], sep="\t").set_index("method")
    assert list(table1.index) == ["interpaffinelinear", "model0"]
    assert table1.loc["model0", "parameters"] == 1234
    assert list(table1.columns[:6]) == ["mae", "nmse", "nmse_paper", "psnr", "ssim", "parameters"]  # as in the paper
    assert table1.loc["model0", "mae"] == "0.015 ± 0.0071"  # mean of 0.01, 0.02
    table2 = pd.read_csv(written["table2"], sep="\t")
    overall = table2[table2.protocol == "all"].set_index("method")
    assert overall.loc["interpaffinelinear", "cjv"] == "0.03 ± 0.014"  # |errors| 0.02, 0.04
    long = pd.read_csv(written["fig13"], sep="\t").set_index(["class", "month"])
    assert long.loc[("csf", 2), "median_diff_pct"] == pytest.approx(4.0)
    assert long.loc[("pial", 2), "median_diff_pct"] == pytest.approx(-10.0)
    found = pd.read_csv(written["findings"], sep="\t").set_index("claim")["holds"]
    assert found["MAE of model0 better than interpaffinelinear"] == "yes"


def test_figures_label_channels_in_the_model_order_not_the_sorted_spec_order() -> None:
    """The workflow's figure spec has sorted keys (FLAIR, T1w, T2w); channel 0 of the explain file is T1w."""
    spec = json.loads(
        json.dumps(
            {"sequences": ["T1w", "T2w", "FLAIR"], "images": {q: {} for q in ("T1w", "T2w", "FLAIR")}}, sort_keys=True
        )
    )
    assert list(spec["images"]) == ["FLAIR", "T1w", "T2w"]
    seqs = figure_sequences(spec)
    assert seqs == ["T1w", "T2w", "FLAIR"]
    assert figure_sequences({"images": {"T1w": {}}}) == ["T1w"]  # older specs: the images' order
    with pytest.raises(ValueError, match="no images for FLAIR"):
        figure_sequences({"sequences": ["T1w", "FLAIR"], "images": {"T1w": {}}})
    maps = {k: np.zeros((1, 3, 8, 8), np.float32) for k in ("input", "output", "attention_1", "gradcam_output")}
    maps["indices"] = np.array([4])
    assert attention_figure(maps, seqs, "t").axes[0].get_title() == "input (T1w)"
    assert gradcam_figure(maps, seqs, "t").axes[0].get_title() == "generated (T1w) + Grad-CAM"


def test_table_page_formats_numbers_and_escapes_text():
    from brainsr.report.html import format_value, table_html

    assert [format_value(v) for v in (None, float("nan"), 4.0, 122471.0, 0.14931802500825184, 4.32e-10)] == [
        "n/a",
        "n/a",
        "4",
        "122471",
        "0.1493",
        "4.32e-10",
    ]
    assert format_value("0.98 ± 0.01") == "0.98 ± 0.01" and format_value(False) == "False" and format_value(3) == "3"
    frame = pd.DataFrame({"claim": ["a < b & c"], "value": [np.nan], "n": [2]})
    page = table_html(frame, "Claims <checked>", "tables/x.tsv")
    assert "<title>Claims &lt;checked&gt;</title>" in page and "<td>a &lt; b &amp; c</td>" in page
    assert "<td>n/a</td>" in page and "<td>2</td>" in page and "<code>tables/x.tsv</code>" in page
    assert "<th>claim</th>" in page
    long = table_html(pd.DataFrame({"claim": ["x" * 60], "holds": ["yes"]}), "t", "s")
    assert '<td class="text">' + "x" * 60 in long and "<td>yes</td>" in long  # long text wraps, the rest stays in view
