# The synthetic paired cohort (used when config bids_dir is empty): one job per subject plus the dataset files.
# Each subject depends only on its own seed, so adding subjects runs only the new subjects' jobs.


if SYNTHETIC:

    rule simulate_dataset:
        input:
            protocols=SIM["protocols_file"],
        output:
            L.dataset.values(),
        params:
            sim=json.dumps({**SIM, "splits": L.split}, sort_keys=True),  # the frozen split goes to participants.tsv
            sessions=json.dumps(L.sessions, sort_keys=True),
            root=lambda wildcards, output: os.path.dirname(output[0]),
        log:
            log_path("simulate_dataset"),
        localrule: True
        threads: 1
        conda:
            "../../envs/brainsr.yaml"
        resources:
            mem_mb=1000,
            runtime=10,
        shell:
            "brainsr simulate dataset --bids-dir {params.root} --protocols {input.protocols} "
            "--simulate-json {params.sim:q} --sessions-json {params.sessions:q} > {log} 2>&1"

    rule simulate_patient:
        input:
            protocols=SIM["protocols_file"],
        output:
            L.subject_outputs([CLIN, RES]),
        wildcard_constraints:
            subject=r"P[0-9]+",
        params:
            sim=lambda wc: L.subject_json(wc.subject),
            sessions=json.dumps(L.sessions, sort_keys=True),
            protocol=lambda wc: L.subject_protocol(wc.subject),
            root=lambda wildcards, output: dataset_root(output[0]),
        log:
            log_path("simulate_patient", subject="{subject}"),
        benchmark:
            benchmark_path("simulate_patient", subject="{subject}")
        threads: 1
        conda:
            "../../envs/brainsr.yaml"
        resources:
            **L.resources_for("simulate"),
        shell:
            "brainsr simulate subject --bids-dir {params.root} --subject {wildcards.subject} "
            "--protocol {params.protocol} --protocols {input.protocols} "
            "--simulate-json {params.sim:q} --sessions-json {params.sessions:q} > {log} 2>&1"

    rule simulate_control:
        input:
            protocols=SIM["protocols_file"],
        output:
            L.subject_outputs(synthetic_control_sessions(config)),
        wildcard_constraints:
            subject=r"C[0-9]+",
        params:
            sim=lambda wc: L.subject_json(wc.subject),
            sessions=json.dumps(L.sessions, sort_keys=True),
            root=lambda wildcards, output: dataset_root(output[0]),
        log:
            log_path("simulate_control", subject="{subject}"),
        benchmark:
            benchmark_path("simulate_control", subject="{subject}")
        threads: 1
        conda:
            "../../envs/brainsr.yaml"
        resources:
            **L.resources_for("simulate"),
        shell:
            "brainsr simulate subject --bids-dir {params.root} --subject {wildcards.subject} "
            "--protocols {input.protocols} "
            "--simulate-json {params.sim:q} --sessions-json {params.sessions:q} > {log} 2>&1"
