# Preprocessing (paper 3.1), per session: bias correction + brain extraction -> template transforms (each
# estimated once, one job per transform) -> every alignment x resampling variant ("prep") on the analysis grid.
# Outputs form a BIDS-derivatives dataset under <output_dir>/preprocess.

from brainsr.preprocess.pipeline import prep_label

PRE = config["preprocess"]
PREP_DIR = f"{OUT}/preprocess"
TPL = PRE["template"]["name"]
GRID_RES = f"{PRE['grid_mm']:g}".replace(".", "p")
TEMPLATE = {
    "image": bids(PREP_DIR, space=TPL, res=GRID_RES, desc="brain", suffix="T1w"),
    "mask": bids(PREP_DIR, space=TPL, res=GRID_RES, desc="brain", suffix="mask"),
}
MANUAL_MASKS = PRE["brain"]["manual_masks_dir"] or f"{BIDS_DIR}/derivatives/masks"
GROUP.update(
    {
        "prep_description": f"{PREP_DIR}/dataset_description.json",
        "prep_quality": f"{TABLES}/preprocess_alignment_quality.tsv",
    }
)
if SYNTHETIC:
    GROUP.update(
        {
            "prep_accuracy": f"{TABLES}/preprocess_accuracy.tsv",
            "prep_accuracy_summary": f"{TABLES}/preprocess_accuracy_summary.tsv",
        }
    )


def prep_labels():
    """Every alignment x variant built for patients, e.g. rigidlinear, affinesinc, warp."""
    return [
        prep_label(a, v) for a in PRE["alignments"] for v in ([None] if a == "warp" else PRE["build_variants"])
    ]


def preps_of(subject):
    """Patients get every prep; control subjects (longitudinal research scans) only the primary one."""
    return [PRE["primary"]] if subject in CONTROLS else prep_labels()


def prep_spec(prep):
    """(transform key, interpolation) of a prep label."""
    if prep == "warp":
        return "warp", PRE["warp_interpolation"]
    for alignment in ("rigid", "affine"):
        if prep.startswith(alignment):
            variant = PRE["variants"][prep[len(alignment) :]]
            return f"{alignment}{variant['cost']}", variant["interpolation"]
    raise WorkflowError(f"unknown prep {prep!r}")


def _ses(wc, **kw):
    return dict(subject=wc.subject, session=wc.session, datatype="anat", **kw)


def prep_brain(subject, session, seq):
    return bids(PREP_DIR, subject=subject, session=session, datatype="anat", desc="brain", suffix=seq)


def prep_mask(subject, session):
    return bids(PREP_DIR, subject=subject, session=session, datatype="anat", space="T1w", desc="brain", suffix="mask")


def prep_seq_xfm(subject, session, seq):
    return bids(
        PREP_DIR, subject=subject, session=session, datatype="anat", from_=seq, to="T1w", mode="image",
        suffix="xfm", extension=".mat",
    )


def prep_tpl_xfm(subject, session, key, inverse=False):
    ends = ("T1w", TPL) if not inverse else (TPL, "T1w")
    return bids(
        PREP_DIR, subject=subject, session=session, datatype="anat", from_=ends[0], to=ends[1], desc=key,
        mode="image", suffix="xfm", extension=".nii.gz" if key == "warp" else ".mat",
    )


def prep_image(subject, session, prep, seq):
    return bids(PREP_DIR, subject=subject, session=session, datatype="anat", space=TPL, desc=prep, suffix=seq)


def prep_image_mask(subject, session, prep):
    return bids(PREP_DIR, subject=subject, session=session, datatype="anat", space=TPL, desc=prep, suffix="mask")


def prep_qc(subject, session, ext):
    return bids(
        PREP_DIR, subject=subject, session=session, datatype="figures" if ext == ".png" else "anat",
        space=TPL, desc="alignment", suffix="qc", extension=ext,
    )


def prep_accuracy(subject, session):
    return bids(
        PREP_DIR, subject=subject, session=session, datatype="anat", desc="accuracy", suffix="preproc",
        extension=".tsv",
    )


def manual_mask(wc):
    """A user-edited mask for this session, if one was placed in the documented location."""
    path = bids(MANUAL_MASKS, subject=wc.subject, session=wc.session, datatype="anat", desc="brain", suffix="mask")
    return [path] if os.path.exists(path) else []


def all_prep_sessions():
    return [(sub, ses) for sub in PATIENTS + CONTROLS for ses in all_sessions(sub)]


def _kv(mapping):
    return " ".join(f"{k}={v}" for k, v in mapping.items())


PREP_SETTINGS = json.dumps(
    {k: PRE[k] for k in ("bias", "brain", "iso_mm", "level_mm", "syn_iterations")}, sort_keys=True
)


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
    log:
        log_path("preprocess_template"),
    threads: 1
    conda:
        "../../envs/imaging.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "brainsr preprocess template {params.template} --spacing {PRE[grid_mm]} --margin {PRE[crop_margin_mm]} "
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
    threads: 2
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
    output:
        xfm=prep_tpl_xfm("{subject}", "{session}", "{key}"),
        inverse=prep_tpl_xfm("{subject}", "{session}", "{key}", inverse=True),
    wildcard_constraints:
        key="(rigid|affine)(cr|mi)",
    params:
        settings=PREP_SETTINGS,
    log:
        log_path("preprocess_register", subject="{subject}", session="{session}", key="{key}"),
    benchmark:
        benchmark_path("preprocess_register", subject="{subject}", session="{session}", key="{key}")
    threads: 2
    conda:
        "../../envs/imaging.yaml"
    resources:
        **resources_for("preprocess"),
    shell:
        "brainsr preprocess register --key {wildcards.key} --brain-t1w {input.brain} --mask {input.mask} "
        "--template {input.template} --template-mask {input.template_mask} "
        "--out {output.xfm} --inverse {output.inverse} --settings-json {params.settings:q} > {log} 2>&1"


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
    threads: 2
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
    log:
        log_path("preprocess_resample", subject="{subject}", session="{session}", prep="{prep}"),
    benchmark:
        benchmark_path("preprocess_resample", subject="{subject}", session="{session}", prep="{prep}")
    threads: 2
    conda:
        "../../envs/imaging.yaml"
    resources:
        **resources_for("preprocess"),
    shell:
        "brainsr preprocess resample --brain {params.brain} --mask {input.mask} --template {input.template} "
        "--xfm-template {input.xfm_template} {params.xfm} --interpolation {params.interpolation} "
        "--percentiles {params.percentiles} --prep {wildcards.prep} --out {params.out} --out-mask {output.mask} "
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
    log:
        log_path("preprocess_qc", subject="{subject}", session="{session}"),
    threads: 1
    conda:
        "../../envs/report.yaml"
    resources:
        **resources_for("qc"),
    shell:
        "brainsr preprocess qc {params.images} {params.masks} --template {input.template} "
        "--template-mask {input.template_mask} --primary {PRE[primary]} --title {params.title:q} "
        "--figure {output.figure} --table {output.table} > {log} 2>&1"


if SYNTHETIC:

    def accuracy_spec(wc):
        """Files the accuracy of one session is measured from (see brainsr.preprocess.report)."""
        sub, ses = wc.subject, wc.session
        gt = dict(subject=sub, session=ses, datatype="anat")
        chains = {}
        for prep in preps_of(sub):
            tpl = prep_tpl_xfm(sub, ses, prep_spec(prep)[0])
            chains[prep] = {seq: [tpl] + ([] if seq == "T1w" else [prep_seq_xfm(sub, ses, seq)]) for seq in SEQS}
        return {
            "subject": sub,
            "session": ses,
            "template_mask": TEMPLATE["mask"],
            "template_to_subject_field": bids(
                GT_DIR, subject=sub, suffix="xfm", from_=TEMPLATE_SPACE, to="subject", mode="image"
            ),
            "poses": {
                s: bids(GT_DIR, **gt, suffix="xfm", extension=".txt", from_="subject", to=s, mode="image") for s in SEQS
            },
            "chains": chains,
            "brain_mask": prep_mask(sub, ses),
            "gt_brain_mask": bids(GT_DIR, **gt, space="T1w", desc="brain", suffix="mask"),
            "raw": session_images(sub, ses),
            "corrected": {s: prep_brain(sub, ses, s) for s in SEQS},
            "gt_dseg": {s: bids(GT_DIR, **gt, space=s, desc="tissue", suffix="dseg") for s in SEQS},
        }

    def _spec_files(spec):
        files = [spec["template_mask"], spec["template_to_subject_field"], spec["brain_mask"], spec["gt_brain_mask"]]
        files += list(spec["poses"].values()) + list(spec["raw"].values()) + list(spec["corrected"].values())
        files += list(spec["gt_dseg"].values())
        files += sorted({f for chain in spec["chains"].values() for c in chain.values() for f in c})
        return files

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
