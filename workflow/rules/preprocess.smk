# Preprocessing rules (paper 3.1); file names and specs from the layout L (brainsr.workflow.layout).
# One job per session (brainsr.preprocess.chain): bias correction + brain extraction -> the template transforms
# its preps need (each estimated once) -> every alignment x resampling variant ("prep") on the analysis grid -> QC.
# Outputs form a BIDS-derivatives dataset under <output_dir>/preprocess.


rule preprocess_dataset:
    output:
        L.group["prep_description"],
    log:
        log_path("preprocess_dataset"),
    localrule: True
    run:
        from brainsr.preprocess.report import write_dataset_description

        write_dataset_description(output[0], source=L.bids_dir)


rule preprocess_template:
    output:
        image=L.template["image"],
        mask=L.template["mask"],
    params:
        template=(
            f"--template-image {PRE['template']['image']} --template-mask {PRE['template']['mask']}"
            if PRE["template"]["image"]
            else ""
        ),
        spacing=PRE["grid_mm"],
        margin=PRE["crop_margin_mm"],
    log:
        log_path("preprocess_template"),
    benchmark:
        benchmark_path("preprocess_template")
    threads: 1
    conda:
        "../../envs/brainsr.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "brainsr preprocess template {params.template} --spacing {params.spacing} --margin {params.margin} "
        "--out-image {output.image} --out-mask {output.mask} > {log} 2>&1"


# One rule per group of subjects that need the same preps (prep_roles): a rule's outputs cannot depend on the
# subject, and one job per session keeps every image read once and the DAG small.
for _role, _subjects in L.prep_roles().items():
    _outputs = L.session_outputs(L.preps_of(_subjects[0]))

    rule:
        name:
            f"preprocess_{_role}"
        input:
            images=lambda wc: L.session_images(wc.subject, wc.session).values(),
            manual=lambda wc: L.manual_mask(wc.subject, wc.session),
            template=L.template["image"],
            template_mask=L.template["mask"],
        output:
            **{k: v for k, v in _outputs.items() if k != "qc_figure"},
            qc_figure=report(
                _outputs["qc_figure"][0],
                caption="../report/preprocess_alignment.rst",
                category="Preprocessing",
                subcategory="{subject}",
                labels={"subject": "{subject}", "session": "{session}"},
            ),
        wildcard_constraints:
            subject="|".join(_subjects),
        params:
            images=lambda wc: kv(L.session_images(wc.subject, wc.session)),
            preps=lambda wc: " ".join(L.preps_of(wc.subject)),
            manual=lambda wc, input: f"--manual-mask {input.manual[0]}" if input.manual else "",
            settings=L.prep_settings,
            root=lambda wc, output: dataset_root(output.mask[0]),
            space=L.tpl,
        log:
            log_path(f"preprocess_{_role}", subject="{subject}", session="{session}"),
        benchmark:
            benchmark_path(f"preprocess_{_role}", subject="{subject}", session="{session}")
        threads: 1  # single-threaded ITK: the same inputs give the same outputs
        conda:
            "../../envs/brainsr.yaml"
        resources:
            **L.resources_for("preprocess"),
        shell:
            "brainsr preprocess session --image {params.images} --root {params.root} --space {params.space} "
            "--subject {wildcards.subject} --session {wildcards.session} --preps {params.preps} "
            "--template {input.template} --template-mask {input.template_mask} {params.manual} "
            "--settings-json {params.settings:q} > {log} 2>&1"


if SYNTHETIC:

    rule preprocess_accuracy:
        input:
            lambda wc: L.accuracy_files(L.accuracy_spec(wc.subject, wc.session)),
        output:
            L.prep.accuracy("{subject}", "{session}"),
        params:
            spec=lambda wc: json.dumps(L.accuracy_spec(wc.subject, wc.session), sort_keys=True),
        log:
            log_path("preprocess_accuracy", subject="{subject}", session="{session}"),
        benchmark:
            benchmark_path("preprocess_accuracy", subject="{subject}", session="{session}")
        threads: 1
        conda:
            "../../envs/brainsr.yaml"
        resources:
            **L.resources_for("qc"),
        shell:
            "brainsr preprocess accuracy --spec-json {params.spec:q} --out {output} > {log} 2>&1"


rule preprocess_qc_gate:
    input:
        quality=L.gate_quality(training=True),
    output:
        L.group["prep_gate"],
    params:
        ledger=L.gate_ledger,
        settings=json.dumps(L.pre["qc_gate"], sort_keys=True),
        prep=L.pre["primary"],
    log:
        log_path("preprocess_qc_gate"),
    benchmark:
        benchmark_path("preprocess_qc_gate")
    threads: 1
    localrule: True
    conda:
        "../../envs/brainsr.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "brainsr preprocess gate --quality {input.quality:q} --ledger {params.ledger} "
        "--settings-json {params.settings:q} --prep {params.prep} --out {output} > {log} 2>&1"


rule preprocess_tables:
    input:
        quality=[L.prep.qc(sub, ses, ".tsv") for sub, ses in L.all_prep_sessions()],
        accuracy=[L.prep.accuracy(sub, ses) for sub, ses in L.all_prep_sessions()] if SYNTHETIC else [],
        participants=L.dataset["participants"] if SYNTHETIC else L.group["inventory"],
    output:
        quality=L.group["prep_quality"],
        accuracy=L.group["prep_accuracy"] if SYNTHETIC else [],
        summary=L.group["prep_accuracy_summary"] if SYNTHETIC else [],
    params:
        accuracy=lambda wc, input, output: (
            f"--accuracy {' '.join(input.accuracy)} --out-accuracy {output.accuracy} --out-summary {output.summary}"
            if input.accuracy
            else ""
        ),
    log:
        log_path("preprocess_tables"),
    benchmark:
        benchmark_path("preprocess_tables")
    threads: 1
    localrule: True
    conda:
        "../../envs/brainsr.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "brainsr preprocess tables --quality {input.quality} {params.accuracy} "
        "--participants {input.participants} --out-quality {output.quality} > {log} 2>&1"
