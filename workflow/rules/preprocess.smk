# Preprocessing rules (paper 3.1); names and input functions in common_preprocess.smk.


rule preprocess_dataset:
    output:
        GROUP["prep_description"],
    log:
        log_path("preprocess_dataset"),
    localrule: True
    run:
        from brainsr.preprocess.report import write_dataset_description

        write_dataset_description(output[0], source=BIDS_DIR)


rule preprocess_template:
    output:
        image=TEMPLATE["image"],
        mask=TEMPLATE["mask"],
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
        "../../envs/imaging.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "brainsr preprocess template {params.template} --spacing {params.spacing} --margin {params.margin} "
        "--out-image {output.image} --out-mask {output.mask} > {log} 2>&1"


rule preprocess_prepare:
    input:
        images=lambda wc: session_images(wc.subject, wc.session).values(),
        manual=manual_mask,
    output:
        brain=[prep_brain("{subject}", "{session}", seq) for seq in SEQS],
        sidecars=[prep_brain("{subject}", "{session}", seq).replace(".nii.gz", ".json") for seq in SEQS],
        mask=prep_mask("{subject}", "{session}"),
        xfm=[prep_seq_xfm("{subject}", "{session}", seq) for seq in SEQS[1:]],
    params:
        images=lambda wc: _kv(session_images(wc.subject, wc.session)),
        brain=lambda wc: _kv({seq: prep_brain(wc.subject, wc.session, seq) for seq in SEQS}),
        xfm=lambda wc: " ".join(f"--out-xfm {s}={prep_seq_xfm(wc.subject, wc.session, s)}" for s in SEQS[1:]),
        manual=lambda wc, input: f"--manual-mask {input.manual[0]}" if input.manual else "",
        settings=PREP_SETTINGS,
    log:
        log_path("preprocess_prepare", subject="{subject}", session="{session}"),
    benchmark:
        benchmark_path("preprocess_prepare", subject="{subject}", session="{session}")
    threads: 1  # single-threaded ITK: the same inputs give the same outputs
    conda:
        "../../envs/imaging.yaml"
    resources:
        **resources_for("preprocess"),
    shell:
        "brainsr preprocess prepare --image {params.images} --out-brain {params.brain} {params.xfm} "
        "--out-mask {output.mask} {params.manual} --settings-json {params.settings:q} > {log} 2>&1"


rule preprocess_register:
    input:
        brain=lambda wc: prep_brain(wc.subject, wc.session, "T1w"),
        mask=lambda wc: prep_mask(wc.subject, wc.session),
        template=TEMPLATE["image"],
        template_mask=TEMPLATE["mask"],
        initial=lambda wc: [prep_tpl_xfm(wc.subject, wc.session, k) for k in [initial_key(wc.key)] if k],
    output:
        xfm=prep_tpl_xfm("{subject}", "{session}", "{key}"),
        inverse=prep_tpl_xfm("{subject}", "{session}", "{key}", inverse=True),
    wildcard_constraints:
        key="(rigid|affine)(cr|mi)",
    params:
        settings=PREP_SETTINGS,
        initial=lambda wc, input: f"--initial {input.initial[0]}" if input.initial else "",
    log:
        log_path("preprocess_register", subject="{subject}", session="{session}", key="{key}"),
    benchmark:
        benchmark_path("preprocess_register", subject="{subject}", session="{session}", key="{key}")
    threads: 1  # ITK runs single-threaded (deterministic, see brainsr.preprocess.images); CR is our own optimiser
    conda:
        "../../envs/imaging.yaml"
    resources:
        **resources_for("preprocess"),
    shell:
        "brainsr preprocess register --key {wildcards.key} --brain-t1w {input.brain} --mask {input.mask} "
        "--template {input.template} --template-mask {input.template_mask} "
        "--out {output.xfm} --inverse {output.inverse} {params.initial} --settings-json {params.settings:q} "
        "> {log} 2>&1"


rule preprocess_warp:
    input:
        brain=lambda wc: prep_brain(wc.subject, wc.session, "T1w"),
        mask=lambda wc: prep_mask(wc.subject, wc.session),
        template=TEMPLATE["image"],
        template_mask=TEMPLATE["mask"],
        initial=lambda wc: prep_tpl_xfm(wc.subject, wc.session, "affinemi"),
    output:
        xfm=prep_tpl_xfm("{subject}", "{session}", "warp"),
        inverse=prep_tpl_xfm("{subject}", "{session}", "warp", inverse=True),
    params:
        settings=PREP_SETTINGS,
    log:
        log_path("preprocess_warp", subject="{subject}", session="{session}"),
    benchmark:
        benchmark_path("preprocess_warp", subject="{subject}", session="{session}")
    threads: 1  # single-threaded ITK: the same inputs give the same outputs
    conda:
        "../../envs/imaging.yaml"
    resources:
        **resources_for("preprocess"),
    shell:
        "brainsr preprocess register --key warp --brain-t1w {input.brain} --mask {input.mask} "
        "--template {input.template} --template-mask {input.template_mask} --initial {input.initial} "
        "--out {output.xfm} --inverse {output.inverse} --settings-json {params.settings:q} > {log} 2>&1"


rule preprocess_resample:
    input:
        brain=lambda wc: [prep_brain(wc.subject, wc.session, seq) for seq in SEQS],
        mask=lambda wc: prep_mask(wc.subject, wc.session),
        xfm=lambda wc: [prep_seq_xfm(wc.subject, wc.session, seq) for seq in SEQS[1:]],
        template=TEMPLATE["image"],
        xfm_template=lambda wc: prep_tpl_xfm(wc.subject, wc.session, prep_spec(wc.prep)[0]),
    output:
        images=[prep_image("{subject}", "{session}", "{prep}", seq) for seq in SEQS],
        sidecars=[prep_image("{subject}", "{session}", "{prep}", seq).replace(".nii.gz", ".json") for seq in SEQS],
        mask=prep_image_mask("{subject}", "{session}", "{prep}"),
    params:
        brain=lambda wc: _kv({seq: prep_brain(wc.subject, wc.session, seq) for seq in SEQS}),
        xfm=lambda wc: " ".join(f"--xfm {s}={prep_seq_xfm(wc.subject, wc.session, s)}" for s in SEQS[1:]),
        out=lambda wc: _kv({seq: prep_image(wc.subject, wc.session, wc.prep, seq) for seq in SEQS}),
        interpolation=lambda wc: prep_spec(wc.prep)[1],
        percentiles=" ".join(str(p) for p in PRE["rescale_percentiles"]),
        core_mm=PRE["rescale_core_mm"],
    log:
        log_path("preprocess_resample", subject="{subject}", session="{session}", prep="{prep}"),
    benchmark:
        benchmark_path("preprocess_resample", subject="{subject}", session="{session}", prep="{prep}")
    threads: 1  # single-threaded ITK: the same inputs give the same outputs
    conda:
        "../../envs/imaging.yaml"
    resources:
        **resources_for("preprocess"),
    shell:
        "brainsr preprocess resample --brain {params.brain} --mask {input.mask} --template {input.template} "
        "--xfm-template {input.xfm_template} {params.xfm} --interpolation {params.interpolation} "
        "--percentiles {params.percentiles} --core-mm {params.core_mm} --prep {wildcards.prep} --out {params.out} --out-mask {output.mask} "
        "> {log} 2>&1"


rule preprocess_qc:
    input:
        images=lambda wc: [prep_image(wc.subject, wc.session, p, s) for p in preps_of(wc.subject) for s in SEQS],
        masks=lambda wc: [prep_image_mask(wc.subject, wc.session, p) for p in preps_of(wc.subject)],
        template=TEMPLATE["image"],
        template_mask=TEMPLATE["mask"],
    output:
        figure=report(
            prep_qc("{subject}", "{session}", ".png"),
            caption="../report/preprocess_alignment.rst",
            category="Preprocessing",
            subcategory="{subject}",
            labels={"subject": "{subject}", "session": "{session}"},
        ),
        table=prep_qc("{subject}", "{session}", ".tsv"),
    params:
        images=lambda wc: " ".join(
            f"--image {p}:{s}={prep_image(wc.subject, wc.session, p, s)}" for p in preps_of(wc.subject) for s in SEQS
        ),
        masks=lambda wc: " ".join(
            f"--mask {p}={prep_image_mask(wc.subject, wc.session, p)}" for p in preps_of(wc.subject)
        ),
        title=lambda wc: f"sub-{wc.subject} ses-{wc.session}: {PRE['primary']} alignment to {TPL}",
        primary=PRE["primary"],
    log:
        log_path("preprocess_qc", subject="{subject}", session="{session}"),
    threads: 1
    conda:
        "../../envs/report.yaml"
    resources:
        **resources_for("qc"),
    shell:
        "brainsr preprocess qc {params.images} {params.masks} --template {input.template} "
        "--template-mask {input.template_mask} --primary {params.primary} --title {params.title:q} "
        "--figure {output.figure} --table {output.table} > {log} 2>&1"


if SYNTHETIC:

    rule preprocess_accuracy:
        input:
            lambda wc: _spec_files(accuracy_spec(wc)),
        output:
            prep_accuracy("{subject}", "{session}"),
        params:
            spec=lambda wc: json.dumps(accuracy_spec(wc), sort_keys=True),
        log:
            log_path("preprocess_accuracy", subject="{subject}", session="{session}"),
        benchmark:
            benchmark_path("preprocess_accuracy", subject="{subject}", session="{session}")
        threads: 1
        conda:
            "../../envs/imaging.yaml"
        resources:
            **resources_for("qc"),
        shell:
            "brainsr preprocess accuracy --spec-json {params.spec:q} --out {output} > {log} 2>&1"


rule preprocess_tables:
    input:
        quality=[prep_qc(sub, ses, ".tsv") for sub, ses in all_prep_sessions()],
        accuracy=[prep_accuracy(sub, ses) for sub, ses in all_prep_sessions()] if SYNTHETIC else [],
        participants=DATASET["participants"] if SYNTHETIC else GROUP["inventory"],
    output:
        quality=GROUP["prep_quality"],
        accuracy=GROUP["prep_accuracy"] if SYNTHETIC else [],
        summary=GROUP["prep_accuracy_summary"] if SYNTHETIC else [],
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
        "../../envs/report.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "brainsr preprocess tables --quality {input.quality} {params.accuracy} "
        "--participants {input.participants} --out-quality {output.quality} > {log} 2>&1"
