# Evaluation and report rules (paper 3.8, 4.2-4.9); names and input functions in common_evaluate.smk.
# Per scan set (subject, session, desc): quality metrics, classes + WMH, agreement; per clinical method also image
# metrics. Per research prep: the T1w tissue masks every method's quality metrics use. Group: tables, figures,
# the blinded rating sheet.

_SCAN = dict(subject=r"[A-Za-z0-9]+", session=r"[A-Za-z0-9]+", desc=r"[A-Za-z0-9]+")
_WC = dict(subject="{subject}", session="{session}", desc="{desc}")


rule evaluate_lesion_prior:
    input:
        grid=TEMPLATE["image"],
    output:
        LESION_PRIOR,
    params:
        prior=json.dumps(EV["lesion_prior"], sort_keys=True),
    log:
        log_path("evaluate_lesion_prior"),
    benchmark:
        benchmark_path("evaluate_lesion_prior")
    threads: 1
    conda:
        "../../envs/imaging.yaml"
    resources:
        **resources_for("evaluate"),
    shell:
        "brainsr segment prior --grid {input.grid} --params-json {params.prior:q} --out {output} > {log} 2>&1"


rule evaluate_tissues:
    input:
        t1=lambda wc: prep_image(wc.subject, RES, wc.desc, "T1w"),
        mask=lambda wc: prep_image_mask(wc.subject, RES, wc.desc),
    output:
        labels=eval_file("{subject}", RES, "{desc}", "tissues"),
        volumes=eval_file("{subject}", RES, "{desc}", "tissue_volumes"),
    wildcard_constraints:
        **_SCAN,
    params:
        seed=EV["seed"],
        components=EV["tissue_components"],
    log:
        log_path("evaluate_tissues", subject="{subject}", desc="{desc}"),
    benchmark:
        benchmark_path("evaluate_tissues", subject="{subject}", desc="{desc}")
    threads: 1
    conda:
        "../../envs/imaging.yaml"
    resources:
        **resources_for("evaluate"),
    shell:
        "brainsr segment tissues --t1 {input.t1} --mask {input.mask} --out {output.labels} "
        "--out-json {output.volumes} --seed {params.seed} --components {params.components} > {log} 2>&1"


rule evaluate_image:
    input:
        unpack(lambda wc: reference_inputs(wc.subject, CLIN, wc.desc, "research", "research_mask")),
    output:
        eval_file("{subject}", CLIN, "{desc}", "imagemetrics"),
    wildcard_constraints:
        **_SCAN,
    params:
        images=lambda wc, input: _kv(dict(zip(SEQS, input.images))),
        research=lambda wc, input: _kv(dict(zip(SEQS, input.research))),
        axis=EV["axis"],
    log:
        log_path("evaluate_image", subject="{subject}", desc="{desc}"),
    benchmark:
        benchmark_path("evaluate_image", subject="{subject}", desc="{desc}")
    threads: 1
    conda:
        "../../envs/imaging.yaml"
    resources:
        **resources_for("evaluate"),
    shell:
        "brainsr evaluate image --method {params.images} --research {params.research} --mask {input.research_mask} "
        "--axis {params.axis} --out {output} > {log} 2>&1"


rule evaluate_quality:
    input:
        unpack(lambda wc: reference_inputs(wc.subject, wc.session, wc.desc, "tissues", "research_mask")),
    output:
        eval_file(**_WC, kind="quality"),
    wildcard_constraints:
        **_SCAN,
    params:
        images=lambda wc, input: _kv(dict(zip(SEQS, input.images))),
    log:
        log_path("evaluate_quality", **_WC),
    benchmark:
        benchmark_path("evaluate_quality", **_WC)
    threads: 1
    conda:
        "../../envs/imaging.yaml"
    resources:
        **resources_for("evaluate"),
    shell:
        "brainsr evaluate quality --image {params.images} --tissues {input.tissues} --mask {input.research_mask} "
        "--out {output} > {log} 2>&1"


rule evaluate_segment:
    input:
        images=lambda wc: list(scan_images(wc.subject, wc.session, wc.desc).values()),
        mask=lambda wc: prep_image_mask(wc.subject, wc.session, scan_prep(wc.session, wc.desc)),
        prior=LESION_PRIOR,
    output:
        labels=eval_file(**_WC, kind="dseg"),
        volumes=eval_file(**_WC, kind="volumes"),
    wildcard_constraints:
        **_SCAN,
    params:
        images=lambda wc, input: _kv(dict(zip(SEQS, input.images))),
        wmh=json.dumps(EV["wmh"], sort_keys=True),
        seed=EV["seed"],
    log:
        log_path("evaluate_segment", **_WC),
    benchmark:
        benchmark_path("evaluate_segment", **_WC)
    threads: 1
    conda:
        "../../envs/imaging.yaml"
    resources:
        **resources_for("evaluate"),
    shell:
        "brainsr segment classes --image {params.images} --mask {input.mask} --prior {input.prior} "
        "--wmh-json {params.wmh:q} --seed {params.seed} --out {output.labels} --out-json {output.volumes} "
        "> {log} 2>&1"


rule evaluate_agreement:
    input:
        unpack(agreement_inputs),
    output:
        eval_file(**_WC, kind="agreement"),
    wildcard_constraints:
        **_SCAN,
    params:
        refs=lambda wc, input: " ".join(
            f"--{k} {input[k]}" for k in ("reference", "truth", "lookup") if k in input.keys()
        ),
    log:
        log_path("evaluate_agreement", **_WC),
    benchmark:
        benchmark_path("evaluate_agreement", **_WC)
    threads: 1
    conda:
        "../../envs/imaging.yaml"
    resources:
        **resources_for("evaluate"),
    shell:
        "brainsr evaluate agreement --seg {input.seg} {params.refs} --out {output} > {log} 2>&1"


rule report_tables:
    input:
        group_inputs(),
    output:
        **{k: table_file(k) for k in GROUP_TABLES},
        table1_html=_report("table1_html", "table1", "4.6 Comparison with other models", "Table 1"),
        tableS1_html=_report("tableS1_html", "tableS1", BEST_MODEL, "Table S1 (every experiment)"),
        table2_html=_report("table2_html", "table2", "4.9.1 Brain image quality metrics", "Table 2"),
        tableS3_html=_report("tableS3_html", "tables_agreement", SEGMENTATION, "Table S3 (CSF)"),
        tableS4_html=_report("tableS4_html", "tables_agreement", SEGMENTATION, "Table S4 (sinuses)"),
        tableS5_html=_report("tableS5_html", "tables_agreement", SEGMENTATION, "Table S5 (pial)"),
        tableS6_html=_report("tableS6_html", "tables_agreement", SEGMENTATION, "Table S6 (WMH)"),
        truth_html=_report("truth_html", "truth_agreement", SEGMENTATION, "Ground truth"),
        fig10_html=_report("fig10_html", "fig10", SEGMENTATION, "Fig. 10 numbers"),
        fig13_html=_report("fig13_html", "fig13", LONGITUDINAL, "Fig. 13 numbers"),
        findings_html=_report("findings_html", "findings", CLAIMS, "Summary table"),
        fig10_png=_report("fig10_png", "fig10", SEGMENTATION, "Fig. 10"),
        fig13_png=_report("fig13_png", "fig13", LONGITUDINAL, "Fig. 13"),
    params:
        spec=lambda wc: json.dumps(group_spec(), sort_keys=True),
        tables=lambda wc, output: os.path.dirname(output.table1),
        figures=lambda wc, output: os.path.dirname(output.fig10_png),
        html=lambda wc, output: os.path.dirname(output.table1_html),
    log:
        log_path("report_tables"),
    localrule: True
    benchmark:
        benchmark_path("report_tables")
    threads: 1
    conda:
        "../../envs/report.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "brainsr report tables --spec-json {params.spec:q} --tables {params.tables} --figures {params.figures} "
        "--html {params.html} > {log} 2>&1"


rule report_figures:
    input:
        spec_files(subject_figure_spec()) if SR_SUBJECTS and SHOWCASE else [],
    output:
        **{
            k: report(figure_file(k), caption=f"{_CAPTIONS}/{k}.rst", category=cat, subcategory=sub)
            for k, (cat, sub) in _SUBJECT_CAPTIONS.items()
        },
    params:
        spec=json.dumps(subject_figure_spec(), sort_keys=True) if SR_SUBJECTS and SHOWCASE else "{}",
        figures=lambda wc, output: os.path.dirname(output.fig05),
    log:
        log_path("report_figures"),
    benchmark:
        benchmark_path("report_figures")
    threads: 1
    conda:
        "../../envs/report.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "brainsr report figures --spec-json {params.spec:q} --figures {params.figures} > {log} 2>&1"


rule report_rating:
    input:
        [f for sets in rating_spec().values() for seqs in sets.values() for f in seqs.values()] if SHOWCASE else [],
    output:
        images=directory(f"{RATING_DIR}/images"),
        sheet=f"{RATING_DIR}/sheet.csv",
        key=RATING_KEY,
    params:
        spec=json.dumps(rating_spec(), sort_keys=True) if SHOWCASE else "{}",
        seed=EV["rating_seed"],
    log:
        log_path("report_rating"),
    benchmark:
        benchmark_path("report_rating")
    threads: 1
    conda:
        "../../envs/report.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "brainsr report rating --spec-json {params.spec:q} --images {output.images} --sheet {output.sheet} "
        "--key {output.key} --seed {params.seed} > {log} 2>&1"
