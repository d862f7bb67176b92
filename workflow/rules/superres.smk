# Super-resolution rules (paper 3.2-3.7); file names and specs from the layout L (brainsr.workflow.layout).
# One training job per experiment (GPU job: resources gpu=1), one inference job per test subject and method
# (method = an experiment, or interp<prep>: the resampled clinical scan itself, the interpolation baseline).


rule superres_dataset:
    output:
        L.group["sr_description"],
    log:
        log_path("superres_dataset"),
    localrule: True
    run:
        from brainsr.preprocess.report import write_dataset_description

        write_dataset_description(
            output[0], source=L.prep_dir, name="brainsr super-resolution (upsampled clinical scans)",
            description="Li et al. 2022, sections 3.2-3.7",
        )


rule superres_train:
    input:
        clinical=lambda wc: L.train_images(wc.experiment, CLIN),
        research=lambda wc: L.train_images(wc.experiment, RES),
        # decisions frozen on first use: a gate table rewritten for a new subject does not retrain
        gate=ancient(L.group["prep_gate"]),
    output:
        model=L.model_file("{experiment}"),
        summary=L.model_file("{experiment}", "summary"),
        history=L.model_file("{experiment}", "history"),
    params:
        spec=lambda wc: L.train_spec(wc.experiment),
        work=lambda wc: L.model_file(wc.experiment, "work"),
        device=SR["device"],
    log:
        log_path("superres_train", experiment="{experiment}"),
    benchmark:
        benchmark_path("superres_train", experiment="{experiment}")
    threads: SR["threads"]
    conda:
        "../../envs/brainsr.yaml"
    resources:
        gpu=1,
        **L.resources_for("train"),
    shell:
        "brainsr train --spec-json {params.spec:q} --out-model {output.model} --out-history {output.history} "
        "--work-dir {params.work} --device {params.device} > {log} 2>&1"


rule superres_infer:
    input:
        unpack(lambda wc: L.infer_inputs(wc.subject, wc.method)),
    output:
        L.sr_outputs("{subject}", "{method}"),
    params:
        model=lambda wc, input: input.model if "model" in input.keys() else "identity",
        images=lambda wc, input: kv(dict(zip(SEQS, input.images))),
        target=lambda wc, input: kv(dict(zip(SEQS, input.target))),
        out=lambda wc: L.sr_images(wc.subject, wc.method),
        out_native=lambda wc: L.sr_images(wc.subject, wc.method, space=False),
        native=lambda wc: L.infer_native_json(wc.subject, wc.method),
        explain=lambda wc: L.sr_explain(wc.subject, wc.method),
        prep=lambda wc: L.method_prep(wc.method),
        device=SR["device"],
        batch=SR["inference"]["batch_size"],
        precision=SR["inference"]["precision"],
        compile="--compile" if SR["inference"]["compile"] else "",
    log:
        log_path("superres_infer", subject="{subject}", method="{method}"),
    benchmark:
        benchmark_path("superres_infer", subject="{subject}", method="{method}")
    threads: SR["threads"]
    conda:
        "../../envs/brainsr.yaml"
    resources:
        gpu=lambda wc: int(wc.method in L.experiments),
        **L.resources_for("infer"),
    shell:
        "brainsr infer --model {params.model} --image {params.images} --out {params.out} --mask {input.mask} "
        "--expect-prep {params.prep} --native-json {params.native:q} --out-native {params.out_native} "
        "--explain {params.explain} --target {params.target} --device {params.device} --batch-size {params.batch} "
        "--precision {params.precision} {params.compile} > {log} 2>&1"


rule superres_tables:
    input:
        summaries=[L.model_file(e, "summary") for e in L.experiments],
    output:
        f"{L.tables}/superres_validation.tsv",
    params:
        experiments=json.dumps(L.experiments, sort_keys=True),
    log:
        log_path("superres_tables"),
    benchmark:
        benchmark_path("superres_tables")
    localrule: True
    threads: 1
    conda:
        "../../envs/brainsr.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "brainsr superres-table --summary {input.summaries} --experiments-json {params.experiments:q} "
        "--out {output} > {log} 2>&1"
