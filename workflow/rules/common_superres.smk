# Super-resolution (paper 3.2-3.7): experiments, splits, file names and input functions of superres.smk.
# One training job per experiment (GPU job: resources gpu=1), one inference job per test subject and method
# (method = an experiment, or interp<prep>: the resampled clinical scan itself, the interpolation baseline).

from brainsr.preprocess.pipeline import native_chain

SR = config["superres"]
SR_DIR = f"{OUT}/superres"
CLIN, RES = SESSIONS["clinical"], SESSIONS["research"]
_unknown = sorted(set(SR["run"] or []) - set(SR["experiments"]))
if _unknown:
    raise WorkflowError(f"superres.run names experiments that are not defined: {_unknown}")
EXPERIMENTS = {
    name: {**SR["defaults"], **SR["experiments"][name]} for name in (SR["run"] or list(SR["experiments"]))
}
BASELINES = prep_labels() if SR["baselines"] is None else list(SR["baselines"])
METHODS = list(EXPERIMENTS) + [f"interp{p}" for p in BASELINES]

for _name, _exp in EXPERIMENTS.items():
    _prep = _exp.get("prep", "affinelinear")
    if _prep not in prep_labels():
        raise WorkflowError(
            f"superres experiment {_name!r}: prep {_prep!r} is not built (preprocess builds {prep_labels()})"
        )
for _prep in BASELINES:
    if _prep not in prep_labels():
        raise WorkflowError(f"superres.baselines: prep {_prep!r} is not built (preprocess builds {prep_labels()})")


def split_subjects(name):
    return [s for s in PATIENTS if SPLIT.get(s) == name]


# Patients upsampled and evaluated (evaluate.splits; default: the test split).
SR_SUBJECTS = [s for s in PATIENTS if SPLIT.get(s) in config["evaluate"]["splits"]]


# Training needs train and validation subjects; without them only the interpolation baselines are built.
SR_TRAINABLE = bool(split_subjects("train")) and bool(split_subjects("validation"))
if EXPERIMENTS and not SR_TRAINABLE:
    logger.warning(
        "superres: no experiment is trained (the dataset has "
        f"{len(split_subjects('train'))} train and {len(split_subjects('validation'))} validation subjects)"
    )
    METHODS = [m for m in METHODS if m not in EXPERIMENTS]
GROUP["sr_description"] = f"{SR_DIR}/dataset_description.json"
if SR_TRAINABLE:
    GROUP["sr_validation"] = f"{TABLES}/superres_validation.tsv"


def exp_prep(experiment):
    return EXPERIMENTS[experiment].get("prep", "affinelinear")


def model_file(experiment, kind="model"):
    """results/superres/models/<experiment>/{model.pt, model.json, history.tsv}; checkpoints in work/ beside."""
    names = {"model": "model.pt", "summary": "model.json", "history": "history.tsv", "work": "work"}
    return f"{SR_DIR}/models/{experiment}/{names[kind]}"


def train_images(experiment, session):
    prep = exp_prep(experiment)
    subjects = split_subjects("train") + split_subjects("validation")
    return [prep_image(s, session, prep, seq) for s in subjects for seq in SEQS]


def train_spec(wildcards):
    """JSON spec of `brainsr train`: settings, sequences and the train/validation subjects' files."""
    exp = EXPERIMENTS[wildcards.experiment]
    prep = exp_prep(wildcards.experiment)

    def entries(split):
        return [
            {
                "subject": s,
                "clinical": [prep_image(s, CLIN, prep, q) for q in SEQS],
                "research": [prep_image(s, RES, prep, q) for q in SEQS],
            }
            for s in split_subjects(split)
        ]

    return json.dumps(
        {
            "experiment": wildcards.experiment,
            "settings": {**exp, "prep": prep},
            "sequences": SEQS,
            "train": entries("train"),
            "validation": entries("validation"),
            "rescale_percentiles": PRE["rescale_percentiles"],
            "rescale_core_mm": PRE["rescale_core_mm"],
            "threads": SR["threads"],
        },
        sort_keys=True,
    )


def method_prep(method):
    return method[len("interp") :] if method.startswith("interp") and method not in EXPERIMENTS else exp_prep(method)


def sr_image(subject, method, seq, space=True):
    """Upsampled (or interpolated) clinical scan: template grid (space=True) or the native clinical grid."""
    kw = dict(subject=subject, session=CLIN, datatype="anat", desc=method, suffix=seq)
    return bids(SR_DIR, space=TPL, **kw) if space else bids(SR_DIR, **kw)


def sr_explain(subject, method):
    return bids(SR_DIR, subject=subject, session=CLIN, datatype="anat", desc=method, suffix="explain", extension=".npz")


def infer_inputs(wildcards):
    sub, method = wildcards.subject, wildcards.method
    prep = method_prep(method)
    key = prep_spec(prep)[0]
    files = {
        "images": [prep_image(sub, CLIN, prep, q) for q in SEQS],
        "mask": prep_image_mask(sub, CLIN, prep),
        "target": [prep_image(sub, RES, prep, q) for q in SEQS],
        "native": [prep_brain(sub, CLIN, q) for q in SEQS],
        "xfm": [prep_tpl_xfm(sub, CLIN, key, inverse=True)] + [prep_seq_xfm(sub, CLIN, q) for q in SEQS[1:]],
    }
    if method in EXPERIMENTS:
        files["model"] = model_file(method)
    return files


def infer_native_json(wildcards):
    """Per sequence the native reference and the transform chain from the template grid back onto it."""
    sub, prep = wildcards.subject, method_prep(wildcards.method)
    inverse = prep_tpl_xfm(sub, CLIN, prep_spec(prep)[0], inverse=True)
    spec = {}
    for q in SEQS:
        transforms, invert = native_chain(inverse, None if q == SEQS[0] else prep_seq_xfm(sub, CLIN, q))
        spec[q] = {"reference": prep_brain(sub, CLIN, q), "transforms": transforms, "invert": invert}
    return json.dumps(spec, sort_keys=True)


def sr_outputs(subject, method):
    files = [sr_image(subject, method, q) for q in SEQS] + [sr_image(subject, method, q, space=False) for q in SEQS]
    return files + [f.replace(".nii.gz", ".json") for f in files] + [sr_explain(subject, method)]


def all_sr_targets():
    files = [GROUP["sr_description"]]
    if SR_TRAINABLE:
        files += [GROUP["sr_validation"]] + [model_file(e) for e in EXPERIMENTS]
    files += [f for s in SR_SUBJECTS for m in METHODS for f in sr_outputs(s, m)]
    return files
