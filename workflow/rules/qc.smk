# Dataset inventory (any BIDS input) and the synthetic cohort's QC figure and realism tables.


rule bids_inventory:
    input:
        images=L.all_raw_images(),
        dataset=L.dataset["description"],
        participants=[L.dataset["participants"]] if SYNTHETIC else [],
    output:
        L.group["inventory"],
    params:
        root=lambda wildcards, input: os.path.dirname(input.dataset),
        cfg=json.dumps(
            {k: config[k] for k in ("sessions", "sequences", "bids_filters", "split")}, sort_keys=True
        ),
    log:
        log_path("bids_inventory"),
    localrule: True
    benchmark:
        benchmark_path("bids_inventory")
    threads: 1
    conda:
        "../../envs/brainsr.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "brainsr inventory --bids-dir {params.root} --config-json {params.cfg:q} --out {output} > {log} 2>&1"


rule cohort_qc:
    input:
        images=L.all_raw_images(),
        participants=L.dataset["participants"],
    output:
        figure=report(
            L.group["cohort_figure"],
            caption="../report/cohort_protocols.rst",
            category="Synthetic cohort",
            labels={"figure": "clinical vs research per protocol"},
        ),
        table=L.group["cohort_quality"],
        summary=L.group["cohort_summary"],
    params:
        root=lambda wildcards, input: os.path.dirname(input.participants),
    log:
        log_path("cohort_qc"),
    benchmark:
        benchmark_path("cohort_qc")
    # first among the ready jobs: it needs only the simulation; in the whole default run of stop 29 it started
    # last of the preprocessing-stage jobs (4.7 min, 250 CPU-s) and ran its final 3.3 min alone, one core idle,
    # while the two-thread training waited
    priority: 1
    threads: 1
    conda:
        "../../envs/brainsr.yaml"
    resources:
        **L.resources_for("qc"),
    shell:
        "brainsr cohort-qc --bids-dir {params.root} --figure {output.figure} --table {output.table} "
        "--summary {output.summary} > {log} 2>&1"
