# Evaluation and report rules (paper 3.8, 4.2-4.9); file names and specs from the layout L
# (brainsr.workflow.layout), report captions in common_evaluate.smk.
# One job per scan set (subject, session, desc), one rule per kind (`brainsr evaluate scanset`): a research set
# (T1w tissue masks every method's quality metrics use, quality metrics, classes + WMH, agreement with the ground
# truth), a method's clinical set (image and quality metrics, classes + WMH, agreement with the research set) and a
# control visit (classes + WMH). Group: tables, figures, the blinded rating sheet.

rule evaluate_lesion_prior:
    input:
        grid=L.template["image"],
    output:
        L.lesion_prior,
    params:
        prior=json.dumps(EV["lesion_prior"], sort_keys=True),
    log:
        log_path("evaluate_lesion_prior"),
    benchmark:
        benchmark_path("evaluate_lesion_prior")
    threads: 1
    conda:
        "../../envs/brainsr.yaml"
    resources:
        **L.resources_for("evaluate"),
    shell:
        "brainsr segment prior --grid {input.grid} --params-json {params.prior:q} --out {output} > {log} 2>&1"


rule evaluate_research:
    input:
        unpack(lambda wc: scan_set_inputs(wc.subject, RES, wc.desc)),
    output:
        **L.scan_set_outputs("research", RES),
    wildcard_constraints:
        **_SCAN,
    params:
        images=lambda wc, input: kv(dict(zip(SEQS, input.images))),
        truth=lambda wc, input: truth_args(input),
        out=lambda wc, output: kv(dict(output.items())),
        seed=EV["seed"],
        components=EV["tissue_components"],
        wmh=json.dumps(EV["wmh"], sort_keys=True),
    log:
        log_path("evaluate_research", subject="{subject}", desc="{desc}"),
    benchmark:
        benchmark_path("evaluate_research", subject="{subject}", desc="{desc}")
    threads: 1
    conda:
        "../../envs/brainsr.yaml"
    resources:
        **L.resources_for("evaluate"),
    shell:
        "brainsr evaluate scanset --image {params.images} --mask {input.mask} --prior {input.prior} {params.truth} "
        "--seed {params.seed} --components {params.components} --wmh-json {params.wmh:q} --out {params.out} "
        "> {log} 2>&1"


rule evaluate_clinical:
    input:
        unpack(lambda wc: scan_set_inputs(wc.subject, CLIN, wc.desc)),
    output:
        **L.scan_set_outputs("clinical", CLIN),
    wildcard_constraints:
        **_SCAN,
    params:
        images=lambda wc, input: kv(dict(zip(SEQS, input.images))),
        research=lambda wc, input: kv(dict(zip(SEQS, input.research))),
        truth=lambda wc, input: truth_args(input),
        out=lambda wc, output: kv(dict(output.items())),
        seed=EV["seed"],
        wmh=json.dumps(EV["wmh"], sort_keys=True),
        axis=EV["axis"],
    log:
        log_path("evaluate_clinical", subject="{subject}", desc="{desc}"),
    benchmark:
        benchmark_path("evaluate_clinical", subject="{subject}", desc="{desc}")
    threads: 1
    conda:
        "../../envs/brainsr.yaml"
    resources:
        **L.resources_for("evaluate"),
    shell:
        "brainsr evaluate scanset --image {params.images} --mask {input.mask} --prior {input.prior} "
        "--research {params.research} --research-mask {input.research_mask} --tissues {input.tissues} "
        "--reference {input.reference} {params.truth} --seed {params.seed} --wmh-json {params.wmh:q} "
        "--axis {params.axis} --out {params.out} > {log} 2>&1"


rule evaluate_month:
    input:
        unpack(lambda wc: scan_set_inputs(wc.subject, wc.session, wc.desc)),
    output:
        **L.scan_set_outputs("month"),
    wildcard_constraints:
        **_SCAN,
        session=L.month_pattern,
    params:
        images=lambda wc, input: kv(dict(zip(SEQS, input.images))),
        out=lambda wc, output: kv(dict(output.items())),
        seed=EV["seed"],
        wmh=json.dumps(EV["wmh"], sort_keys=True),
    log:
        log_path("evaluate_month", **_WC),
    benchmark:
        benchmark_path("evaluate_month", **_WC)
    threads: 1
    conda:
        "../../envs/brainsr.yaml"
    resources:
        **L.resources_for("evaluate"),
    shell:
        "brainsr evaluate scanset --image {params.images} --mask {input.mask} --prior {input.prior} "
        "--seed {params.seed} --wmh-json {params.wmh:q} --out {params.out} > {log} 2>&1"


rule report_tables:
    input:
        L.group_inputs(),
    output:
        **{k: L.table_file(k) for k in GROUP_TABLES},
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
        qc_gate_html=_report("qc_gate_html", "qc_gate", CLAIMS, "Preprocessing QC gate"),
        qc_failed_html=_report("qc_failed_html", "qc_gate", CLAIMS, "Subjects reported apart"),
        fig10_png=_report("fig10_png", "fig10", SEGMENTATION, "Fig. 10"),
        fig13_png=_report("fig13_png", "fig13", LONGITUDINAL, "Fig. 13"),
        metrics_png=_report("metrics_png", "metrics", BEST_MODEL, "Metrics by protocol"),
    params:
        spec=lambda wc: L.group_spec(),
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
        "../../envs/brainsr.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "brainsr report tables --spec-json {params.spec:q} --tables {params.tables} --figures {params.figures} "
        "--html {params.html} > {log} 2>&1"


rule report_figures:
    input:
        L.subject_figure_files(),
    output:
        **{
            k: report(L.figure_file(k), caption=f"{_CAPTIONS}/{k}.rst", category=cat, subcategory=sub)
            for k, (cat, sub) in _SUBJECT_CAPTIONS.items()
        },
    params:
        spec=L.subject_figure_json(),
        figures=lambda wc, output: os.path.dirname(output.fig05),
    log:
        log_path("report_figures"),
    benchmark:
        benchmark_path("report_figures")
    threads: 1
    conda:
        "../../envs/brainsr.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "brainsr report figures --spec-json {params.spec:q} --figures {params.figures} > {log} 2>&1"


rule report_rating:
    input:
        L.rating_files(),
    output:
        images=directory(f"{L.rating_dir}/images"),
        sheet=f"{L.rating_dir}/sheet.csv",
        key=L.rating_key,
    params:
        spec=L.rating_json(),
        seed=EV["rating_seed"],
    log:
        log_path("report_rating"),
    benchmark:
        benchmark_path("report_rating")
    threads: 1
    conda:
        "../../envs/brainsr.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "brainsr report rating --spec-json {params.spec:q} --images {output.images} --sheet {output.sheet} "
        "--key {output.key} --seed {params.seed} > {log} 2>&1"
