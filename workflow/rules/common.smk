# Config validation, dataset discovery and the path helpers every rule uses.
import hashlib
import json
import os
import re

import yaml

from brainsr import TEMPLATE_SPACE
from brainsr.bids import SEQUENCES as SIM_SEQUENCES, BIDSInputError, discover_configured
from brainsr.config import ConfigError, deep_merge, validate_config
from brainsr.paths import bids
from brainsr.splits import plan_splits
from brainsr.simulate.cohort import (
    GT_NAME,
    load_protocols,
    protocol_weights,
    split_schedule,
    subject_labels,
    weighted_schedule,
)

# config.yaml (the working directory's, else the workflow's) is the base; --configfile presets and --config
# values given on the command line are merged over it, then validated against the package's schema, the only copy
# (brainsr.config.SCHEMA_PATH = src/brainsr/data/config.schema.yaml), which fills in the defaults.
_base_config = "config.yaml" if os.path.exists("config.yaml") else os.path.join(workflow.basedir, "config.yaml")
with open(_base_config) as _fh:
    _base = yaml.safe_load(_fh) or {}

try:
    _validated = validate_config(deep_merge(_base, config))
except ConfigError as _exc:
    raise WorkflowError(f"invalid configuration: {_exc}") from None
config.clear()
config.update(_validated)

OUT = config["output_dir"]
SESSIONS = config["sessions"]
SEQS = list(config["sequences"])
SYNTHETIC = not config["bids_dir"]
BIDS_DIR = f"{OUT}/sourcedata/synthetic" if SYNTHETIC else config["bids_dir"]
GT_DIR = f"{BIDS_DIR}/derivatives/{GT_NAME}"
TABLES = f"{OUT}/tables"
FIGURES = f"{OUT}/figures"
# Every dataset-level and group-level file the rules read or write, named once here.
DATASET = {
    "description": f"{BIDS_DIR}/dataset_description.json",
    "participants": f"{BIDS_DIR}/participants.tsv",
    "participants_json": f"{BIDS_DIR}/participants.json",
    "gt_description": f"{GT_DIR}/dataset_description.json",
    "gt_lookup": f"{GT_DIR}/desc-tissue_dseg.tsv",
}
GROUP = {
    "inventory": f"{TABLES}/bids_inventory.tsv",
    "cohort_figure": f"{FIGURES}/cohort_protocols.png",
    "cohort_quality": f"{TABLES}/cohort_quality.tsv",
    "cohort_summary": f"{TABLES}/cohort_quality_summary.tsv",
}
SIM = config["simulate"]


def repo_path(path):
    """A relative path from the config: the working directory's file if it exists, else the workflow's."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    return os.path.join(workflow.basedir, path)


SIM["protocols_file"] = repo_path(SIM["protocols_file"])

if SYNTHETIC:
    PROTOCOLS = load_protocols(SIM["protocols_file"])
    PATIENTS, CONTROLS = subject_labels(SIM)
    PATIENT_PROTOCOL = dict(
        zip(PATIENTS, weighted_schedule(len(PATIENTS), protocol_weights(SIM, PROTOCOLS)))
    )
    CONTROL_SESSIONS = [
        f"{SESSIONS['longitudinal_prefix']}{m:02d}" for m in SIM["control_months"]
    ]
else:
    INVENTORY = discover_configured(BIDS_DIR, config)
    for _problem in INVENTORY.problems:
        logger.warning(f"BIDS dataset {BIDS_DIR}: {_problem}")
    PATIENTS = INVENTORY.subjects
    CONTROLS = [lon.subject for lon in INVENTORY.longitudinal]


def _assigned_split():
    """{patient: split} before freezing (synthetic: the cohort's schedule), and the participants.tsv-declared."""
    if SYNTHETIC:
        return split_schedule(SIM), set()
    pairs = INVENTORY.pairs
    return {p.subject: p.split for p in pairs}, {p.subject for p in pairs if p.split_declared}


# Only what changes a subject's images goes into params (not n_patients, split counts, ...).
_SUBJECT_KEYS = (
    "seed",
    "template_resolution_mm",
    "min_voxel_mm",
    "research_voxel_mm",
    "stroke_probability",
    "days_between_sessions",
)


def _cohort_settings():
    """What changes a subject's images (recorded beside the frozen split): synthetic settings and protocols."""
    if not SYNTHETIC:
        return {"source": "bids"}
    keys = _SUBJECT_KEYS + ("control_months",)
    protocols = json.dumps(PROTOCOLS, sort_keys=True).encode()
    return {
        "source": "synthetic",
        **{k: SIM[k] for k in keys},
        "protocols_sha256": hashlib.sha256(protocols).hexdigest(),
        "subjects": {s: {"protocol": p} for s, p in PATIENT_PROTOCOL.items()},
    }


# The split is frozen on the first run (splits.tsv, with the cohort settings in splits.json): subjects added later
# are test subjects, so new data never retrains a model; a participants.tsv split wins (README "Adding subjects").
# It is planned here and written only when a run starts, so a dry run, --lint, --report or a job's re-parse
# writes nothing; a frozen split of a cohort made with other settings stops the workflow.
SPLIT_FILE = config["split"]["file"] or f"{OUT}/splits.tsv"
_split, _declared = _assigned_split()
try:
    SPLIT_PLAN = plan_splits(_split, SPLIT_FILE, declared=_declared, settings=_cohort_settings())
except BIDSInputError as _exc:
    raise WorkflowError(str(_exc)) from None
SPLIT = SPLIT_PLAN.split
for _note in SPLIT_PLAN.notes:
    logger.warning(f"split ({SPLIT_FILE}): {_note}")


onstart:
    SPLIT_PLAN.write()


def log_path(rule_name, **wildcards):
    """logs/<rule>/<wildcards>.log"""
    name = "_".join(f"{k}-{v}" for k, v in wildcards.items()) or rule_name
    return f"logs/{rule_name}/{name}.log"


def benchmark_path(rule_name, **wildcards):
    """logs/benchmarks/<rule>/<wildcards>.tsv"""
    name = "_".join(f"{k}-{v}" for k, v in wildcards.items()) or rule_name
    return f"logs/benchmarks/{rule_name}/{name}.tsv"


def subject_sessions(subject):
    """Session labels of a subject (patients: clinical + research; controls: repeated research)."""
    if subject in CONTROLS:
        return CONTROL_SESSIONS
    return [SESSIONS["clinical"], SESSIONS["research"]]


def session_images(subject, session):
    """{sequence: path} of one session in the input BIDS dataset (.nii or .nii.gz)."""
    if not SYNTHETIC:
        if subject in CONTROLS:
            found = INVENTORY.longitudinal[CONTROLS.index(subject)].sessions
        else:
            pair = INVENTORY.pair(subject)
            found = [pair.clinical, pair.research]
        match = [s for s in found if s.session == session]
        if not match:
            raise WorkflowError(f"sub-{subject} has no session {session!r} in {BIDS_DIR}")
        return {seq: str(match[0].images[seq]) for seq in SEQS}
    return {
        seq: bids(BIDS_DIR, subject=subject, session=session, datatype="anat", suffix=seq) for seq in SEQS
    }


def raw_images(subject):
    """The subject's three sequences of every session in the input BIDS dataset."""
    return [f for ses in all_sessions(subject) for f in session_images(subject, ses).values()]


def all_sessions(subject):
    """Session labels of a subject as found (real BIDS) or generated (synthetic)."""
    if SYNTHETIC:
        return subject_sessions(subject)
    if subject in CONTROLS:
        return [s.session for s in INVENTORY.longitudinal[CONTROLS.index(subject)].sessions]
    return [SESSIONS["clinical"], SESSIONS["research"]]


def all_raw_images():
    return [f for sub in PATIENTS + CONTROLS for f in raw_images(sub)]


def resources_for(family):
    res = config["resources"].get(family, {})
    return {"mem_mb": res.get("mem_mb", 4000), "runtime": res.get("runtime", 30)}


def all_targets():
    targets = list(GROUP.values())
    if not SYNTHETIC:
        targets = [t for k, t in GROUP.items() if not k.startswith("cohort_")]
    return targets


def dataset_root(path):
    """BIDS root of a file inside it (the part before the first sub-* folder)."""
    parts = path.split(os.sep)
    for i, part in enumerate(parts):
        if part.startswith("sub-"):
            return os.sep.join(parts[:i]) or "."
    return os.path.dirname(path)


def _subject_outputs(sessions):
    """Images, sidecars and ground truth written by `brainsr simulate subject` for these sessions."""
    sub = "{subject}"
    files = [bids(BIDS_DIR, subject=sub, suffix="sessions", extension=".tsv")]
    files += [
        bids(GT_DIR, subject=sub, suffix="xfm", from_=a, to=b, mode="image")
        for a, b in (("subject", TEMPLATE_SPACE), (TEMPLATE_SPACE, "subject"))
    ]
    files.append(bids(GT_DIR, subject=sub, desc="simulation", suffix="params", extension=".json"))
    for ses in sessions:
        kw = dict(subject=sub, session=ses, datatype="anat")
        files.append(bids(GT_DIR, **kw, space=TEMPLATE_SPACE, desc="tissue", suffix="dseg"))
        files.append(bids(GT_DIR, **kw, desc="truth", suffix="info", extension=".json"))
        for seq in SIM_SEQUENCES:
            files.append(bids(BIDS_DIR, **kw, suffix=seq))
            files.append(bids(BIDS_DIR, **kw, suffix=seq, extension=".json"))
            files.append(bids(GT_DIR, **kw, space=seq, desc="tissue", suffix="dseg"))
            files.append(bids(GT_DIR, **kw, space=seq, desc="brain", suffix="mask"))
            files.append(bids(GT_DIR, **kw, space=seq, label="WMH", suffix="mask"))
            files.append(bids(GT_DIR, **kw, space=seq, label="stroke", suffix="mask"))
            files.append(
                bids(GT_DIR, **kw, suffix="xfm", extension=".txt", from_="subject", to=seq, mode="image")
            )
    return files


def _subject_json(wildcards):
    keys = _SUBJECT_KEYS + (("control_months",) if wildcards.subject in CONTROLS else ())
    return json.dumps({k: SIM[k] for k in keys}, sort_keys=True)


