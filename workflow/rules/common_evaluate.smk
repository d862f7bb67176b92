# Evaluation and report (paper 3.8, 4.2-4.9): file names, scan sets and input functions of evaluate.smk.
# A "scan set" is the three sequences of one session on the analysis grid, named by (subject, session, desc):
#   clinical session, desc = a method  -> the upsampled (experiment) or interpolated (interp<prep>) clinical scans;
#   research / month-NN session, desc = a prep -> the preprocessed research scans (the reference, and controls).
# Per scan set, one job (SCAN_SET_OUTPUTS): image metrics (clinical only), quality metrics, multispectral classes + WMH,
# agreement; the research sets' T1w tissue labels.

EV = config["evaluate"]
EVAL_DIR = f"{OUT}/evaluate"
REPORT_DIR = f"{OUT}/report"
RATING_DIR = f"{OUT}/rating"
RATING_KEY = f"{OUT}/rating_key/key.csv"  # kept out of rating/ so the raters can be given that folder alone
LESION_PRIOR = bids(EVAL_DIR, space=TPL, res=GRID_RES, label="lesion", suffix="probseg")

from brainsr.report.build import GROUP_FIGURES, GROUP_TABLES, SUBJECT_FIGURES
from brainsr.report.provenance import run_facts

_CAPTIONS = "../report"  # captions of the HTML report, relative to workflow/rules


def showcase_method():
    """The method of Figs. 5-12 and the rating sheet: evaluate.showcase, else model0, else the first method."""
    if EV["showcase"]:
        if EV["showcase"] not in METHODS:
            raise WorkflowError(f"evaluate.showcase {EV['showcase']!r} is not built (methods: {METHODS})")
        return EV["showcase"]
    if "model0" in METHODS:
        return "model0"
    return next(iter([m for m in METHODS if m in EXPERIMENTS] + METHODS), None)


SHOWCASE = showcase_method()


def showcase_baseline():
    """The interpolation baseline of the showcase's prep (interp<prep>; None without a showcase)."""
    return f"interp{method_prep(SHOWCASE)}" if SHOWCASE else None


def eval_file(subject, session, desc, kind):
    """evaluate/sub-*/ses-*/anat/..._space-<tpl>_desc-<desc>_<kind>.<ext> (kind: imagemetrics, quality, dseg,
    volumes, agreement; tissues = the research T1w's CSF/GM/WM labels of quality metrics)."""
    suffix, ext = {
        "imagemetrics": ("imagemetrics", ".json"),
        "quality": ("quality", ".json"),
        "dseg": ("dseg", ".nii.gz"),
        "volumes": ("volumes", ".json"),
        "agreement": ("agreement", ".json"),
        "tissues": ("dseg", ".nii.gz"),
        "tissue_volumes": ("volumes", ".json"),
    }[kind]
    label = "T1tissue" if kind.startswith("tissue") else None
    return bids(
        EVAL_DIR, subject=subject, session=session, datatype="anat", space=TPL, label=label, desc=desc,
        suffix=suffix, extension=ext,
    )


def scan_prep(session, desc):
    """The prep whose grid and reference a scan set uses: the method's prep, or desc itself (research)."""
    return method_prep(desc) if session == CLIN else desc


def scan_images(subject, session, desc):
    """{sequence: path} of a scan set: upsampled/interpolated clinical, or preprocessed research/month scans."""
    if session == CLIN:
        return {q: sr_image(subject, desc, q) for q in SEQS}
    return {q: prep_image(subject, session, desc, q) for q in SEQS}


def truth_dseg(subject, session):
    """The synthetic cohort's ground-truth tissue labels of a session, in template space."""
    return bids(GT_DIR, subject=subject, session=session, datatype="anat", space=TEMPLATE_SPACE, desc="tissue", suffix="dseg")


#: What the one job of each kind of scan set writes (eval_file kinds): a research set also its T1w tissue labels
#: (every method of its prep takes them for quality metrics) and, with a ground truth, its agreement; a method also
#: its image metrics and its agreement with the research classes; a control visit only its classes and volumes.
SCAN_SET_OUTPUTS = {
    "research": ["tissues", "tissue_volumes", "quality", "dseg", "volumes"] + (["agreement"] if SYNTHETIC else []),
    "clinical": ["imagemetrics", "quality", "dseg", "volumes", "agreement"],
    "month": ["dseg", "volumes"],
}


def scan_set_outputs(kind, session="{session}"):
    """{eval_file kind: path pattern} of one kind of scan set's evaluation job (SCAN_SET_OUTPUTS)."""
    return {k: eval_file("{subject}", session, "{desc}", k) for k in SCAN_SET_OUTPUTS[kind]}


def scan_set_inputs(subject, session, desc):
    """A scan set's images, its brain mask and the lesion prior; for a method, the research scan set of the same
    prep (images, brain mask, T1w tissue labels, classes); for patients of the synthetic cohort, the ground truth."""
    prep = scan_prep(session, desc)
    files = {
        "images": list(scan_images(subject, session, desc).values()),
        "mask": prep_image_mask(subject, session, prep),
        "prior": LESION_PRIOR,
    }
    if session == CLIN:
        files["research"] = [prep_image(subject, RES, prep, q) for q in SEQS]
        files["research_mask"] = prep_image_mask(subject, RES, prep)
        files["tissues"] = eval_file(subject, RES, prep, "tissues")
        files["reference"] = eval_file(subject, RES, prep, "dseg")
    if SYNTHETIC and session in (CLIN, RES):
        files["truth"] = truth_dseg(subject, session)
        files["lookup"] = ancient(DATASET["gt_lookup"])  # rewritten (unchanged) whenever the cohort grows
    return files


# A control visit: any session label but the research and clinical ones (their scan sets have their own rules).
_MONTH = rf"(?!(?:{re.escape(RES)}|{re.escape(CLIN)})(?![A-Za-z0-9]))[A-Za-z0-9]+"


def _images_arg(wildcards, input):
    """SEQ=PATH of the scan set's images (brainsr evaluate scanset --image)."""
    return _kv(dict(zip(SEQS, input.images)))


def _truth_args(wildcards, input):
    """--truth/--lookup of the ground truth where there is one (synthetic cohort)."""
    return " ".join(f"--{k} {input[k]}" for k in ("truth", "lookup") if k in input.keys())


def _out_arg(wildcards, output):
    """KIND=PATH of every output (brainsr evaluate scanset --out)."""
    return _kv(dict(output.items()))


def _months():
    """{control: {session: month}}: the month is the number after the longitudinal prefix (else the order)."""
    prefix = SESSIONS["longitudinal_prefix"]
    out = {}
    for sub in CONTROLS:
        sessions = all_sessions(sub)
        out[sub] = {}
        for i, ses in enumerate(sessions):
            rest = ses[len(prefix) :] if ses.startswith(prefix) else ""
            out[sub][ses] = int(rest) if rest.isdigit() else i
    return out


def subject_protocol(subject):
    if SYNTHETIC:
        return PATIENT_PROTOCOL[subject]
    return INVENTORY.pair(subject).protocol or "unknown"


def _method_info(method):
    kind = "experiment" if method in EXPERIMENTS else "interpolation"
    return {"prep": method_prep(method), "kind": kind, "settings": EXPERIMENTS.get(method, {})}


def scan_sets():
    """Every evaluated (subject, session, desc): methods and research preps of SR_SUBJECTS; controls' months."""
    sets = [(s, CLIN, m) for s in SR_SUBJECTS for m in METHODS]
    sets += [(s, RES, p) for s in SR_SUBJECTS for p in sorted({method_prep(m) for m in METHODS})]
    sets += [(c, ses, PRE["primary"]) for c in CONTROLS for ses in all_sessions(c)]
    return sets


def group_spec():
    """The spec of `brainsr report tables`: subjects, methods, models and the evaluation files' name patterns."""
    pattern = {k: eval_file("{subject}", "{session}", "{desc}", k) for k in ("quality", "volumes", "agreement")}
    pattern["image"] = eval_file("{subject}", "{session}", "{desc}", "imagemetrics")
    return {
        "subjects": {s: subject_protocol(s) for s in SR_SUBJECTS},
        "methods": {m: _method_info(m) for m in METHODS},
        "models": {e: model_file(e, "summary") for e in EXPERIMENTS if e in METHODS},
        "table1": list(EV["table1"]),
        "controls": _months(),
        "primary": PRE["primary"],
        "showcase": SHOWCASE,
        # Fig. 10: the showcase's interpolation baseline beside Table 1's models (paper: "upsampled by different
        # procedures", interpolation included)
        "figure_methods": [m for m in dict.fromkeys([showcase_baseline(), *EV["table1"]]) if m in METHODS]
        or METHODS[:1],
        "truth": SYNTHETIC,
        "sessions": {"clinical": CLIN, "research": RES},
        "patterns": pattern,
    }


def group_inputs():
    """Every file `brainsr report tables` reads (see group_spec)."""
    files = []
    for sub, ses, desc in scan_sets():
        files += [eval_file(sub, ses, desc, "volumes")]
        if sub in SR_SUBJECTS:
            files += [eval_file(sub, ses, desc, "quality")]
            if ses == CLIN or SYNTHETIC:
                files += [eval_file(sub, ses, desc, "agreement")]
            if ses == CLIN:
                files += [eval_file(sub, ses, desc, "imagemetrics")]
    return files + [model_file(e, "summary") for e in EXPERIMENTS if e in METHODS]


def table_file(key):
    return f"{TABLES}/{GROUP_TABLES[key]}"


def figure_file(key):
    return f"{FIGURES}/{GROUP_FIGURES.get(key) or SUBJECT_FIGURES[key]}"


def showcase_subject():
    test = [s for s in SR_SUBJECTS if SPLIT.get(s) == "test"]
    return (test or SR_SUBJECTS or [None])[0]


def subject_figure_spec():
    """The spec of `brainsr report figures` for the showcased subject and method."""
    sub, method = showcase_subject(), SHOWCASE
    prep = method_prep(method)
    baseline = showcase_baseline()
    images = {
        q: {
            "input": prep_image(sub, CLIN, prep, q),
            "generated": sr_image(sub, method, q),
            "target": prep_image(sub, RES, prep, q),
        }
        for q in SEQS
    }
    segs = {"research": {"flair": prep_image(sub, RES, prep, "FLAIR"), "dseg": eval_file(sub, RES, prep, "dseg")}}
    if baseline in METHODS and baseline != method:
        segs[f"interpolated ({baseline})"] = {
            "flair": sr_image(sub, baseline, "FLAIR"), "dseg": eval_file(sub, CLIN, baseline, "dseg")
        }
    segs[method] = {"flair": sr_image(sub, method, "FLAIR"), "dseg": eval_file(sub, CLIN, method, "dseg")}
    return {
        "subject": sub,
        "method": method,
        "baseline": baseline,
        "sequences": list(SEQS),  # channel order: the spec's keys are sorted
        "images": images,
        "mask": prep_image_mask(sub, RES, prep),
        "explain": sr_explain(sub, method),
        "segmentations": segs,
    }


def spec_files(spec):
    """Every path in a figures spec (its images, masks, maps and segmentations)."""
    files = [f for row in spec["images"].values() for f in row.values()] + [spec["mask"], spec["explain"]]
    return files + [f for seg in spec["segmentations"].values() for f in seg.values()]


def rating_spec():
    """{subject: {research, interpolated, upsampled: {seq: path}}} of the evaluated subjects (paper 3.8.4)."""
    prep = method_prep(SHOWCASE)
    return {
        s: {
            "research": {q: prep_image(s, RES, prep, q) for q in SEQS},
            "interpolated": {q: prep_image(s, CLIN, prep, q) for q in SEQS},
            "upsampled": {q: sr_image(s, SHOWCASE, q) for q in SEQS},
        }
        for s in SR_SUBJECTS
    }


def all_eval_targets():
    if not SR_SUBJECTS or SHOWCASE is None:
        return []
    files = [table_file(k) for k in GROUP_TABLES] + [figure_file(k) for k in GROUP_FIGURES]
    files += [figure_file(k) for k in SUBJECT_FIGURES]
    return files + [f"{RATING_DIR}/sheet.csv", RATING_KEY]


def report_table_file(key):
    """report/<table>.html: a group table as the HTML page the report shows (a TSV could only be downloaded)."""
    return f"{REPORT_DIR}/{os.path.splitext(GROUP_TABLES[key])[0]}.html"


def _report(key, caption, category, subcategory=None):
    """A table page (<key>_html) or figure (<key>_png) marked for `snakemake --report`, captioned and grouped by
    paper section."""
    path = report_table_file(key[:-5]) if key.endswith("_html") else figure_file(key[:-4])
    return report(path, caption=f"{_CAPTIONS}/{caption}.rst", category=category, subcategory=subcategory)


# Report categories are paper sections. Snakemake turns each category name into a reStructuredText target
# (".. _<name>:") under every caption: no colon, quote or backquote in them (tests/test_report_captions.py).
BEST_MODEL = "4.1-4.5 Experiments and the best model"
CLAIMS = "Claims of the paper checked on this run"  # linked by name from workflow/report/workflow.rst
SEGMENTATION = "4.9.2 Segmentation in the test set"
LONGITUDINAL = "4.9.3 Longitudinal variability (controls)"

_SUBJECT_CAPTIONS = {
    "fig05": (BEST_MODEL, "Fig. 5 (axial)"),
    "fig06": (BEST_MODEL, "Fig. 6 (coronal)"),
    "fig07": (BEST_MODEL, "Fig. 7 (differences)"),
    "fig08": ("4.7 Attention gates", "Fig. 8 (attention gates)"),
    "fig09": ("4.8 Grad-CAM of the critic", "Fig. 9 (Grad-CAM)"),
    "fig11": (SEGMENTATION, "Fig. 11 (classes)"),
    "fig12": (SEGMENTATION, "Fig. 12 (WMH)"),
}


# What this run was, for the report's landing page (workflow/report/workflow.rst reads config["_run"]).
config["_run"] = run_facts(
    [_base_config, *workflow.configfiles],
    workflow.config_settings.config,
    workflow.basedir,
    {p: SPLIT.get(p) for p in PATIENTS},
    CONTROLS,
    SR_SUBJECTS,
    (showcase_subject(), SHOWCASE) if SR_SUBJECTS and SHOWCASE else None,
)
