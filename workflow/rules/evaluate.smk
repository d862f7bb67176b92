# Evaluation and report rules (paper 3.8, 4.2-4.9); names and input functions in common_evaluate.smk.
# One job per scan set (subject, session, desc), one rule per kind (`brainsr evaluate scanset`): a research set
# (T1w tissue masks every method's quality metrics use, quality metrics, classes + WMH, agreement with the ground
# truth), a method's clinical set (image and quality metrics, classes + WMH, agreement with the research set) and a
# control visit (classes + WMH). Group: tables, figures, the blinded rating sheet.

_SCAN = dict(subject=r"[A-Za-z0-9]+", desc=r"[A-Za-z0-9]+")
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


rule evaluate_research:
    input:
        unpack(lambda wc: scan_set_inputs(wc.subject, RES, wc.desc)),
    output:
        **scan_set_outputs("research", RES),
    wildcard_constraints:
        **_SCAN,
    params:
        images=_images_arg,
        truth=_truth_args,
        out=_out_arg,
        seed=EV["seed"],
        components=EV["tissue_components"],
        wmh=json.dumps(EV["wmh"], sort_keys=True),
    log:
        log_path("evaluate_research", subject="{subject}", desc="{desc}"),
    benchmark:
        benchmark_path("evaluate_research", subject="{subject}", desc="{desc}")
    threads: 1
    conda:
        "../../envs/imaging.yaml"
    resources:
        **resources_for("evaluate"),
    shell:
        "brainsr evaluate scanset --image {params.images} --mask {input.mask} --prior {input.prior} {params.truth} "
        "--seed {params.seed} --components {params.components} --wmh-json {params.wmh:q} --out {params.out} "
        "> {log} 2>&1"


rule evaluate_clinical:
    input:
        unpack(lambda wc: scan_set_inputs(wc.subject, CLIN, wc.desc)),
    output:
        **scan_set_outputs("clinical", CLIN),
    wildcard_constraints:
        **_SCAN,
    params:
        images=_images_arg,
        research=lambda wc, input: _kv(dict(zip(SEQS, input.research))),
        truth=_truth_args,
        out=_out_arg,
        seed=EV["seed"],
        wmh=json.dumps(EV["wmh"], sort_keys=True),
        axis=EV["axis"],
    log:
        log_path("evaluate_clinical", subject="{subject}", desc="{desc}"),
    benchmark:
        benchmark_path("evaluate_clinical", subject="{subject}", desc="{desc}")
    threads: 1
    conda:
        "../../envs/imaging.yaml"
    resources:
        **resources_for("evaluate"),
    shell:
        "brainsr evaluate scanset --image {params.images} --mask {input.mask} --prior {input.prior} "
        "--research {params.research} --research-mask {input.research_mask} --tissues {input.tissues} "
        "--reference {input.reference} {params.truth} --seed {params.seed} --wmh-json {params.wmh:q} "
        "--axis {params.axis} --out {params.out} > {log} 2>&1"


rule evaluate_month:
    input:
        unpack(lambda wc: scan_set_inputs(wc.subject, wc.session, wc.desc)),
    output:
        **scan_set_outputs("month"),
    wildcard_constraints:
        **_SCAN,
        session=_MONTH,
    params:
        images=_images_arg,
        out=_out_arg,
        seed=EV["seed"],
        wmh=json.dumps(EV["wmh"], sort_keys=True),
    log:
        log_path("evaluate_month", **_WC),
    benchmark:
        benchmark_path("evaluate_month", **_WC)
    threads: 1
    conda:
        "../../envs/imaging.yaml"
    resources:
        **resources_for("evaluate"),
    shell:
        "brainsr evaluate scanset --image {params.images} --mask {input.mask} --prior {input.prior} "
        "--seed {params.seed} --wmh-json {params.wmh:q} --out {params.out} > {log} 2>&1"


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
        metrics_png=_report("metrics_png", "metrics", BEST_MODEL, "Metrics by protocol"),
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
