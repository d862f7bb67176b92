# Config validation, the cohort, the frozen split, and L: the run's layout (brainsr.workflow.layout.RunLayout),
# which names every file and builds every spec the rules use.
import json
import os

import yaml

from brainsr.bids import BIDSInputError, discover_configured
from brainsr.config import ConfigError, deep_merge, validate_config
from brainsr.splits import plan_splits
from brainsr.simulate.cohort import load_protocols, protocol_weights, split_schedule, subject_labels, weighted_schedule
from brainsr.workflow.layout import (
    Cohort,
    LayoutError,
    RunLayout,
    benchmark_path,
    cohort_settings,
    dataset_root,
    kv,
    log_path,
    synthetic_control_sessions,
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

SIM = config["simulate"]
# A relative protocols file: the working directory's if it exists, else the workflow's.
if not (os.path.isabs(SIM["protocols_file"]) or os.path.exists(SIM["protocols_file"])):
    SIM["protocols_file"] = os.path.join(workflow.basedir, SIM["protocols_file"])

if not config["bids_dir"]:  # the synthetic cohort
    _protocols = load_protocols(SIM["protocols_file"])
    _patients, _controls = subject_labels(SIM)
    _months = synthetic_control_sessions(config)
    _patient_protocol = dict(zip(_patients, weighted_schedule(len(_patients), protocol_weights(SIM, _protocols))))
    COHORT = Cohort(_patients, _controls, _patient_protocol, {c: _months for c in _controls}, split_schedule(SIM))
    _settings = cohort_settings(SIM, _protocols, _patient_protocol)
else:
    _inventory = discover_configured(config["bids_dir"], config)
    for _problem in _inventory.problems:
        logger.warning(f"BIDS dataset {config['bids_dir']}: {_problem}")
    COHORT = Cohort.from_inventory(_inventory)
    _settings = cohort_settings(None)

# The split is frozen on the first run (splits.tsv, with the cohort settings in splits.json): subjects added later
# are test subjects, so new data never retrains a model; a participants.tsv split wins (README "Adding subjects").
# It is planned here and written only when a run starts, so a dry run, --lint, --report or a job's re-parse
# writes nothing; a frozen split of a cohort made with other settings stops the workflow.
SPLIT_FILE = config["split"]["file"] or f"{config['output_dir']}/splits.tsv"
try:
    SPLIT_PLAN = plan_splits(COHORT.assigned, SPLIT_FILE, declared=COHORT.declared, settings=_settings)
except BIDSInputError as _exc:
    raise WorkflowError(str(_exc)) from None
for _note in SPLIT_PLAN.notes:
    logger.warning(f"split ({SPLIT_FILE}): {_note}")

try:
    L = RunLayout(config, COHORT, SPLIT_PLAN.split)
except LayoutError as _exc:
    raise WorkflowError(str(_exc)) from None
for _note in L.notes:
    logger.warning(_note)
# Shorthands of the rule files.
SYNTHETIC, SEQS, CLIN, RES = L.synthetic, L.seqs, L.clin, L.res
PRE, SR, EV = L.pre, L.sr, L.ev


onstart:
    SPLIT_PLAN.write()
