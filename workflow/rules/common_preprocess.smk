# Preprocessing (paper 3.1): settings, file names and input functions of workflow/rules/preprocess.smk.
# One job per session (brainsr.preprocess.chain): bias correction + brain extraction -> the template transforms
# its preps need (each estimated once) -> every alignment x resampling variant ("prep") on the analysis grid -> QC.
# Outputs form a BIDS-derivatives dataset under <output_dir>/preprocess.

from brainsr.preprocess.chain import SETTING_KEYS, session_keys
from brainsr.preprocess.layout import PrepLayout
from brainsr.preprocess.pipeline import prep_label, prep_spec as _prep_spec

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
    """The preps a consumer reads (common_superres.smk): the primary one (QC figures) for everyone; for evaluated
    patients every method's prep (experiments and interpolation baselines); for the others the training preps."""
    if subject in CONTROLS:
        return [PRE["primary"]]
    used = {PRE["primary"]} | ({exp_prep(e) for e in EXPERIMENTS} if SR_TRAINABLE else set())
    if subject in SR_SUBJECTS:
        used |= {exp_prep(e) for e in EXPERIMENTS} | set(BASELINES)
    return [p for p in prep_labels() if p in used]


def prep_spec(prep):
    """(transform key, interpolation) of a prep label (brainsr.preprocess.pipeline.prep_spec with this config)."""
    try:
        return _prep_spec(prep, PRE)
    except ValueError as exc:
        raise WorkflowError(str(exc)) from None


LAYOUT = PrepLayout(PREP_DIR, TPL, tuple(SEQS))
prep_brain, prep_mask, prep_seq_xfm, prep_tpl_xfm = LAYOUT.brain, LAYOUT.mask, LAYOUT.seq_xfm, LAYOUT.tpl_xfm
prep_image, prep_image_mask, prep_qc, prep_accuracy = LAYOUT.image, LAYOUT.image_mask, LAYOUT.qc, LAYOUT.accuracy


def prep_roles():
    """Subjects grouped by the preps they need (preprocess.smk defines the session job of each group): evaluated
    patients, the other patients, controls. Empty groups are left out."""
    roles = {
        "evaluated": [s for s in PATIENTS if s in SR_SUBJECTS],
        "training": [s for s in PATIENTS if s not in SR_SUBJECTS],
        "control": list(CONTROLS),
    }
    return {role: subjects for role, subjects in roles.items() if subjects}


def manual_mask(wc):
    """A user-edited mask for this session, if one was placed in the documented location."""
    path = bids(MANUAL_MASKS, subject=wc.subject, session=wc.session, datatype="anat", desc="brain", suffix="mask")
    return [path] if os.path.exists(path) else []


def all_prep_sessions():
    return [(sub, ses) for sub in PATIENTS + CONTROLS for ses in all_sessions(sub)]


def _kv(mapping):
    return " ".join(f"{k}={v}" for k, v in mapping.items())


PREP_SETTINGS = json.dumps({k: PRE[k] for k in SETTING_KEYS}, sort_keys=True)


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
