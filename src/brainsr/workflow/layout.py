"""One run's file names and job specs, built from the validated config and the cohort (the workflow's layout).

:class:`RunLayout` names every file the Snakemake rules read or write and builds every JSON spec a ``brainsr``
command parses, so the rule files only wire named inputs, outputs and params to one command line. Paths are BIDS
names built with :func:`brainsr.paths.bids`; labels may be Snakemake placeholders (``"{subject}"``). Conventions
live here once: a method is an experiment or ``interp<prep>`` (the interpolation baseline of a prep), and the
showcased method is ``evaluate.showcase``, else ``model0``, else the first method.

Standard library only: Snakemake imports this module whenever it parses the workflow.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from brainsr import GT_NAME, SEQUENCES, TEMPLATE_SPACE
from brainsr.paths import bids
from brainsr.preprocess.layout import (
    SETTING_KEYS,
    PrepLayout,
    intensity_settings,
    native_chain,
    prep_label,
    prep_spec,
    session_keys,
)

__all__ = [
    "GROUP_FIGURES",
    "GROUP_TABLES",
    "SUBJECT_FIGURES",
    "SUBJECT_KEYS",
    "Cohort",
    "LayoutError",
    "RunLayout",
    "benchmark_path",
    "cohort_settings",
    "dataset_root",
    "kv",
    "log_path",
    "synthetic_control_sessions",
    "truth_args",
]

#: File names of ``brainsr report tables`` (:func:`write_group_tables`) under the tables and figures directories.
GROUP_TABLES = {
    "image": "evaluate_image_metrics.tsv",
    "table1": "table1_architectures.tsv",
    "tableS1": "tableS1_experiments.tsv",
    "quality": "evaluate_quality_metrics.tsv",
    "table2": "table2_quality_errors.tsv",
    "volumes": "evaluate_volumes.tsv",
    "agreement": "evaluate_agreement.tsv",
    "tableS3": "tableS3_csf_agreement.tsv",
    "tableS4": "tableS4_sinus_agreement.tsv",
    "tableS5": "tableS5_pial_agreement.tsv",
    "tableS6": "tableS6_wmh_agreement.tsv",
    "truth": "segmentation_truth_agreement.tsv",
    "fig10": "fig10_bland_altman.tsv",
    "fig13": "fig13_longitudinal.tsv",
    "findings": "evaluation_findings.tsv",
    "qc_gate": "evaluation_qc_gate.tsv",
    "qc_failed": "evaluation_qc_failed.tsv",
}
GROUP_FIGURES = {
    "fig10": "fig10_bland_altman.png",
    "fig13": "fig13_longitudinal.png",
    "metrics": "image_metrics_by_protocol.png",
}
#: File names of ``brainsr report figures`` (per showcased subject, under the figures directory).
SUBJECT_FIGURES = {
    "fig05": "fig05_axial.png",
    "fig06": "fig06_coronal.png",
    "fig07": "fig07_difference.png",
    "fig08": "fig08_attention.png",
    "fig09": "fig09_gradcam.png",
    "fig11": "fig11_segmentation.png",
    "fig12": "fig12_wmh.png",
}
#: Settings of ``simulate`` that change a subject's images (its job's params; not n_patients, split counts...).
SUBJECT_KEYS = (
    "seed",
    "template_resolution_mm",
    "min_voxel_mm",
    "research_voxel_mm",
    "stroke_probability",
    "days_between_sessions",
)
#: What the one job of each kind of scan set writes (eval_file kinds): a research set also its T1w tissue labels
#: (every method of its prep takes them for quality metrics) and, with a ground truth, its agreement; a method also
#: its image metrics and its agreement with the research classes; a control visit only its classes and volumes.
_SCAN_SET_OUTPUTS = {
    "research": ["tissues", "tissue_volumes", "quality", "dseg", "volumes", "agreement"],
    "clinical": ["imagemetrics", "quality", "dseg", "volumes", "agreement"],
    "month": ["dseg", "volumes"],
}
#: eval_file kind -> (suffix, extension); the tissue kinds carry label-T1tissue.
_EVAL_KINDS = {
    "imagemetrics": ("imagemetrics", ".json"),
    "quality": ("quality", ".json"),
    "dseg": ("dseg", ".nii.gz"),
    "volumes": ("volumes", ".json"),
    "agreement": ("agreement", ".json"),
    "tissues": ("dseg", ".nii.gz"),
    "tissue_volumes": ("volumes", ".json"),
}


class LayoutError(ValueError):
    """The config names something the run does not build (the workflow stops with this message)."""


def log_path(rule_name: str, **wildcards: str) -> str:
    """logs/<rule>/<wildcards>.log"""
    name = "_".join(f"{k}-{v}" for k, v in wildcards.items()) or rule_name
    return f"logs/{rule_name}/{name}.log"


def benchmark_path(rule_name: str, **wildcards: str) -> str:
    """logs/benchmarks/<rule>/<wildcards>.tsv"""
    name = "_".join(f"{k}-{v}" for k, v in wildcards.items()) or rule_name
    return f"logs/benchmarks/{rule_name}/{name}.tsv"


def kv(mapping: Mapping[str, Any]) -> str:
    """KEY=VALUE pairs of a command-line option taking several (``--image T1w=a.nii.gz ...``)."""
    return " ".join(f"{k}={v}" for k, v in mapping.items())


def _words(value: Any) -> str:
    """A path, or a list of paths, as command-line words."""
    return value if isinstance(value, str) else " ".join(str(v) for v in value)


def truth_args(files: Mapping[str, Any]) -> str:
    """The ``brainsr evaluate scanset`` options of :meth:`RunLayout.truth_inputs` that a rule's inputs have."""
    keys = ("truth", "lookup", "truth_chain", "truth_pose", "truth_field")
    return " ".join(f"--{k.replace('_', '-')} {_words(files[k])}" for k in keys if k in files.keys())


def dataset_root(path: str) -> str:
    """BIDS root of a file inside it (the part before the first sub-* folder)."""
    parts = path.split(os.sep)
    for i, part in enumerate(parts):
        if part.startswith("sub-"):
            return os.sep.join(parts[:i]) or "."
    return os.path.dirname(path)


def synthetic_control_sessions(config: Mapping[str, Any]) -> list[str]:
    """Session labels of the synthetic cohort's controls: <longitudinal_prefix><month, 2 digits>."""
    prefix = config["sessions"]["longitudinal_prefix"]
    return [f"{prefix}{m:02d}" for m in config["simulate"]["control_months"]]


def cohort_settings(
    sim: Mapping[str, Any] | None, protocols: Any = None, patient_protocol: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """What changes a subject's images, recorded beside the frozen split: for the synthetic cohort (``sim``) its
    settings, a hash of its ``protocols`` and each patient's protocol; ``{"source": "bids"}`` for a BIDS dataset."""
    if sim is None or patient_protocol is None:
        return {"source": "bids"}
    text = json.dumps(protocols, sort_keys=True).encode()
    return {
        "source": "synthetic",
        **{k: sim[k] for k in (*SUBJECT_KEYS, "control_months")},
        "protocols_sha256": hashlib.sha256(text).hexdigest(),
        "subjects": {s: {"protocol": p} for s, p in patient_protocol.items()},
    }


@dataclass
class Cohort:
    """The run's subjects: patients (a clinical and a research session) and controls (repeated research sessions).

    ``images`` (a real BIDS dataset only) maps subject -> session -> sequence -> path; without it the images have
    the synthetic cohort's BIDS names. ``assigned``/``declared``: each patient's split before freezing, and the
    patients whose split participants.tsv declares.
    """

    patients: list[str]
    controls: list[str]
    protocols: dict[str, str]
    control_sessions: dict[str, list[str]]
    assigned: dict[str, str]
    declared: set[str] = field(default_factory=set)
    images: dict[str, dict[str, dict[str, str]]] | None = None

    @classmethod
    def from_inventory(cls, inventory: Any) -> Cohort:
        """The cohort a :class:`brainsr.bids.Inventory` found (its pairs and longitudinal controls)."""
        images: dict[str, dict[str, dict[str, str]]] = {}
        for sub, sessions in [(p.subject, [p.clinical, p.research]) for p in inventory.pairs] + [
            (lon.subject, lon.sessions) for lon in inventory.longitudinal
        ]:
            # the first session of a label wins
            images[sub] = {s.session: {q: str(f) for q, f in s.images.items()} for s in reversed(sessions)}
        return cls(
            patients=list(inventory.subjects),
            controls=[lon.subject for lon in inventory.longitudinal],
            protocols={p.subject: p.protocol or "unknown" for p in inventory.pairs},
            control_sessions={lon.subject: [s.session for s in lon.sessions] for lon in inventory.longitudinal},
            assigned={p.subject: p.split for p in inventory.pairs},
            declared={p.subject for p in inventory.pairs if p.split_declared},
            images=images,
        )


class RunLayout:
    """Every file name and job spec of one run: ``config`` (validated), the ``cohort`` and the frozen ``split``."""

    def __init__(self, config: Mapping[str, Any], cohort: Cohort, split: Mapping[str, str]) -> None:
        self.config, self.cohort, self.split = config, cohort, dict(split)
        self.out = config["output_dir"]
        self.sessions = config["sessions"]
        self.clin, self.res = self.sessions["clinical"], self.sessions["research"]
        self.seqs = list(config["sequences"])
        self.synthetic = not config["bids_dir"]
        self.bids_dir = f"{self.out}/sourcedata/synthetic" if self.synthetic else config["bids_dir"]
        self.gt_dir = f"{self.bids_dir}/derivatives/{GT_NAME}"
        self.tables, self.figures = f"{self.out}/tables", f"{self.out}/figures"
        self.patients, self.controls = list(cohort.patients), list(cohort.controls)
        self.notes: list[str] = []  # warnings for the log
        self.dataset = {
            "description": f"{self.bids_dir}/dataset_description.json",
            "participants": f"{self.bids_dir}/participants.tsv",
            "participants_json": f"{self.bids_dir}/participants.json",
            "gt_description": f"{self.gt_dir}/dataset_description.json",
            "gt_lookup": f"{self.gt_dir}/desc-tissue_dseg.tsv",
        }
        self.group = {
            "inventory": f"{self.tables}/bids_inventory.tsv",
            "cohort_figure": f"{self.figures}/cohort_protocols.png",
            "cohort_quality": f"{self.tables}/cohort_quality.tsv",
            "cohort_summary": f"{self.tables}/cohort_quality_summary.tsv",
        }
        self._init_preprocess()
        self._init_superres()
        self._init_evaluate()

    # --- cohort and inputs (paper 2) ---------------------------------------------------------------------------

    def resources_for(self, family: str) -> dict[str, int]:
        """mem_mb and runtime of a family of jobs (config ``resources``)."""
        res = self.config["resources"].get(family, {})
        return {"mem_mb": res.get("mem_mb", 4000), "runtime": res.get("runtime", 30)}

    def all_sessions(self, subject: str) -> list[str]:
        """Session labels of a subject (patients: clinical + research; controls: repeated research)."""
        if subject in self.controls:
            return list(self.cohort.control_sessions[subject])
        return [self.clin, self.res]

    def session_images(self, subject: str, session: str) -> dict[str, str]:
        """{sequence: path} of one session in the input BIDS dataset (.nii or .nii.gz)."""
        if self.cohort.images is None:
            kw = dict(subject=subject, session=session, datatype="anat")
            return {q: bids(self.bids_dir, **kw, suffix=q) for q in self.seqs}
        found = self.cohort.images.get(subject, {})
        if session not in found:
            raise LayoutError(f"sub-{subject} has no session {session!r} in {self.bids_dir}")
        return {q: found[session][q] for q in self.seqs}

    def raw_images(self, subject: str) -> list[str]:
        """The subject's sequences of every session in the input BIDS dataset."""
        return [f for ses in self.all_sessions(subject) for f in self.session_images(subject, ses).values()]

    def all_raw_images(self) -> list[str]:
        """Every input image of the run."""
        return [f for sub in self.patients + self.controls for f in self.raw_images(sub)]

    def all_targets(self) -> list[str]:
        """The group files of the run (the cohort's QC files only for the synthetic cohort)."""
        return [t for k, t in self.group.items() if self.synthetic or not k.startswith("cohort_")]

    def subject_protocol(self, subject: str) -> str:
        """A patient's clinical acquisition protocol."""
        return self.cohort.protocols[subject]

    def split_subjects(self, name: str) -> list[str]:
        """The patients of one split."""
        return [s for s in self.patients if self.split.get(s) == name]

    def subject_outputs(self, sessions: Sequence[str]) -> list[str]:
        """Images, sidecars and ground truth written by `brainsr simulate subject` for these sessions."""
        sub, gt = "{subject}", self.gt_dir
        files = [bids(self.bids_dir, subject=sub, suffix="sessions", extension=".tsv")]
        files += [
            bids(gt, subject=sub, suffix="xfm", from_=a, to=b, mode="image")
            for a, b in (("subject", TEMPLATE_SPACE), (TEMPLATE_SPACE, "subject"))
        ]
        files.append(bids(gt, subject=sub, desc="simulation", suffix="params", extension=".json"))
        for ses in sessions:
            kw = dict(subject=sub, session=ses, datatype="anat")
            files.append(bids(gt, **kw, space=TEMPLATE_SPACE, desc="tissue", suffix="dseg"))
            files.append(bids(gt, **kw, desc="truth", suffix="info", extension=".json"))
            for seq in SEQUENCES:
                files.append(bids(self.bids_dir, **kw, suffix=seq))
                files.append(bids(self.bids_dir, **kw, suffix=seq, extension=".json"))
                files.append(bids(gt, **kw, space=seq, desc="tissue", suffix="dseg"))
                files.append(bids(gt, **kw, space=seq, desc="brain", suffix="mask"))
                files.append(bids(gt, **kw, space=seq, label="WMH", suffix="mask"))
                files.append(bids(gt, **kw, space=seq, label="stroke", suffix="mask"))
                files.append(bids(gt, **kw, suffix="xfm", extension=".txt", from_="subject", to=seq, mode="image"))
        return files

    def subject_json(self, subject: str) -> str:
        """The settings of ``brainsr simulate subject`` (controls: with their months)."""
        sim = self.config["simulate"]
        keys = SUBJECT_KEYS + (("control_months",) if subject in self.controls else ())
        return json.dumps({k: sim[k] for k in keys}, sort_keys=True)

    # --- preprocessing (paper 3.1) -----------------------------------------------------------------------------

    def _init_preprocess(self) -> None:
        pre = self.pre = self.config["preprocess"]
        self.prep_dir = f"{self.out}/preprocess"
        self.tpl = pre["template"]["name"]
        self.grid_res = f"{pre['grid_mm']:g}".replace(".", "p")
        self.template = {
            "image": bids(self.prep_dir, space=self.tpl, res=self.grid_res, desc="brain", suffix="T1w"),
            "mask": bids(self.prep_dir, space=self.tpl, res=self.grid_res, desc="brain", suffix="mask"),
        }
        self.manual_masks = pre["brain"]["manual_masks_dir"] or f"{self.bids_dir}/derivatives/masks"
        self.prep = PrepLayout(self.prep_dir, self.tpl, tuple(self.seqs))
        self.group["prep_description"] = f"{self.prep_dir}/dataset_description.json"
        self.group["prep_quality"] = f"{self.tables}/preprocess_alignment_quality.tsv"
        self.group["prep_gate"] = f"{self.tables}/preprocess_qc_gate.tsv"
        self.gate_ledger = f"{self.out}/qc_gate.tsv"  # decisions frozen on first use, like splits.tsv
        if self.synthetic:
            self.group["prep_accuracy"] = f"{self.tables}/preprocess_accuracy.tsv"
            self.group["prep_accuracy_summary"] = f"{self.tables}/preprocess_accuracy_summary.tsv"
        self.prep_settings = json.dumps({k: pre[k] for k in SETTING_KEYS}, sort_keys=True)

    def prep_labels(self) -> list[str]:
        """Every alignment x variant built for patients, e.g. rigidlinear, affinesinc, warp."""
        pre = self.pre
        return [prep_label(a, v) for a in pre["alignments"] for v in ([None] if a == "warp" else pre["build_variants"])]

    def prep_spec(self, prep: str) -> tuple[str, str]:
        """(transform key, interpolation) of a prep label with this config."""
        try:
            return prep_spec(prep, self.pre)
        except ValueError as exc:
            raise LayoutError(str(exc)) from None

    def preps_of(self, subject: str) -> list[str]:
        """The preps a consumer reads: the primary one (QC figures) for everyone; for evaluated patients every
        method's prep (experiments and interpolation baselines); for the other patients the training preps."""
        primary = self.pre["primary"]
        if subject in self.controls:
            return [primary]
        trained = {self.exp_prep(e) for e in self.experiments}
        used = {primary} | (trained if self.sr_trainable else set())
        if subject in self.sr_subjects:
            used |= trained | set(self.baselines)
        return [p for p in self.prep_labels() if p in used]

    def prep_roles(self) -> dict[str, list[str]]:
        """Subjects grouped by the preps they need (one session rule per group): evaluated patients, the other
        patients, controls. Empty groups are left out."""
        roles = {
            "evaluated": [s for s in self.patients if s in self.sr_subjects],
            "training": [s for s in self.patients if s not in self.sr_subjects],
            "control": list(self.controls),
        }
        return {role: subjects for role, subjects in roles.items() if subjects}

    def session_outputs(self, preps: Sequence[str]) -> dict[str, list[str]]:
        """What one session's preprocessing job writes for these preps (placeholders for subject and session)."""
        return self.prep.session_outputs("{subject}", "{session}", preps, session_keys(preps, self.pre))

    def manual_mask(self, subject: str, session: str) -> list[str]:
        """A user-edited mask for this session, if one was placed in the documented location."""
        kw = dict(subject=subject, session=session, datatype="anat")
        path = bids(self.manual_masks, **kw, desc="brain", suffix="mask")
        return [path] if os.path.exists(path) else []

    def all_prep_sessions(self) -> list[tuple[str, str]]:
        """(subject, session) of every preprocessed session."""
        return [(sub, ses) for sub in self.patients + self.controls for ses in self.all_sessions(sub)]

    def accuracy_spec(self, sub: str, ses: str) -> dict[str, Any]:
        """Files the accuracy of one session is measured from (see brainsr.preprocess.report)."""
        gt, seqs, prep = dict(subject=sub, session=ses, datatype="anat"), self.seqs, self.prep
        chains = {}
        for p in self.preps_of(sub):
            tpl = prep.tpl_xfm(sub, ses, self.prep_spec(p)[0])
            chains[p] = {q: [tpl] + ([] if q == "T1w" else [prep.seq_xfm(sub, ses, q)]) for q in seqs}
        xfm = dict(suffix="xfm", mode="image")
        return {
            "subject": sub,
            "session": ses,
            "template_mask": self.template["mask"],
            "template_to_subject_field": bids(self.gt_dir, subject=sub, from_=TEMPLATE_SPACE, to="subject", **xfm),
            "poses": {q: bids(self.gt_dir, **gt, extension=".txt", from_="subject", to=q, **xfm) for q in seqs},
            "chains": chains,
            "brain_mask": prep.mask(sub, ses),
            "gt_brain_mask": bids(self.gt_dir, **gt, space="T1w", desc="brain", suffix="mask"),
            "raw": self.session_images(sub, ses),
            "corrected": {q: prep.brain(sub, ses, q) for q in seqs},
            "gt_dseg": {q: bids(self.gt_dir, **gt, space=q, desc="tissue", suffix="dseg") for q in seqs},
        }

    @staticmethod
    def accuracy_files(spec: Mapping[str, Any]) -> list[str]:
        """Every file an accuracy spec names."""
        files = [spec["template_mask"], spec["template_to_subject_field"], spec["brain_mask"], spec["gt_brain_mask"]]
        files += list(spec["poses"].values()) + list(spec["raw"].values()) + list(spec["corrected"].values())
        files += list(spec["gt_dseg"].values())
        return files + sorted({f for chain in spec["chains"].values() for c in chain.values() for f in c})

    # --- super-resolution (paper 3.2-3.7) ----------------------------------------------------------------------

    def _init_superres(self) -> None:
        sr, built = self.config["superres"], self.prep_labels()
        self.sr, self.sr_dir = sr, f"{self.out}/superres"
        unknown = sorted(set(sr["run"] or []) - set(sr["experiments"]))
        if unknown:
            raise LayoutError(f"superres.run names experiments that are not defined: {unknown}")
        names = sr["run"] or list(sr["experiments"])
        self.experiments = {name: {**sr["defaults"], **sr["experiments"][name]} for name in names}
        self.baselines = built if sr["baselines"] is None else list(sr["baselines"])
        self.methods = list(self.experiments) + [f"interp{p}" for p in self.baselines]
        for name in self.experiments:
            if self.exp_prep(name) not in built:
                raise LayoutError(
                    f"superres experiment {name!r}: prep {self.exp_prep(name)!r} is not built (preprocess builds "
                    f"{built})"
                )
        for prep in self.baselines:
            if prep not in built:
                raise LayoutError(f"superres.baselines: prep {prep!r} is not built (preprocess builds {built})")
        # Patients upsampled and evaluated (evaluate.splits; default: the test split).
        self.sr_subjects = [s for s in self.patients if self.split.get(s) in self.config["evaluate"]["splits"]]
        # Training needs train and validation subjects; without them only the interpolation baselines are built.
        n_train, n_val = len(self.split_subjects("train")), len(self.split_subjects("validation"))
        self.sr_trainable = bool(n_train) and bool(n_val)
        if self.experiments and not self.sr_trainable:
            self.notes.append(
                f"superres: no experiment is trained (the dataset has {n_train} train and {n_val} validation subjects)"
            )
            self.methods = [m for m in self.methods if m not in self.experiments]
        self.group["sr_description"] = f"{self.sr_dir}/dataset_description.json"
        if self.sr_trainable:
            self.group["sr_validation"] = f"{self.tables}/superres_validation.tsv"

    def exp_prep(self, experiment: str) -> str:
        """The prep an experiment trains on."""
        return self.experiments[experiment].get("prep", "affinelinear")

    def method_prep(self, method: str) -> str:
        """The prep of a method: an experiment's, or <prep> of the interpolation baseline interp<prep>."""
        if method.startswith("interp") and method not in self.experiments:
            return method[len("interp") :]
        return self.exp_prep(method)

    def model_file(self, experiment: str, kind: str = "model") -> str:
        """superres/models/<experiment>/{model.pt, model.json, history.tsv}; checkpoints in work/ beside."""
        names = {"model": "model.pt", "summary": "model.json", "history": "history.tsv", "work": "work"}
        return f"{self.sr_dir}/models/{experiment}/{names[kind]}"

    def train_images(self, experiment: str, session: str) -> list[str]:
        """One session's images of the train and validation subjects under the experiment's prep."""
        prep = self.exp_prep(experiment)
        subjects = self.split_subjects("train") + self.split_subjects("validation")
        return [self.prep.image(s, session, prep, q) for s in subjects for q in self.seqs]

    def train_spec(self, experiment: str) -> str:
        """JSON spec of `brainsr train`: settings, sequences and the train/validation subjects' files."""
        prep, image = self.exp_prep(experiment), self.prep.image

        def entries(split: str) -> list[dict[str, Any]]:
            return [
                {
                    "subject": s,
                    "clinical": [image(s, self.clin, prep, q) for q in self.seqs],
                    "research": [image(s, self.res, prep, q) for q in self.seqs],
                }
                for s in self.split_subjects(split)
            ]

        spec = {
            "experiment": experiment,
            "settings": {**self.experiments[experiment], "prep": prep},
            "sequences": self.seqs,
            "train": entries("train"),
            "validation": entries("validation"),
            "intensity": intensity_settings(self.pre),
            "qc_gate": self.gate_spec(("train", "validation")),
            "threads": self.sr["threads"],
        }
        return json.dumps(spec, sort_keys=True)

    def gate_spec(self, splits: Sequence[str] | None = None) -> dict[str, Any]:
        """The QC gate's table, switch and the config's overrides of the subjects in ``splits`` (all: None), so
        that a training spec changes only when an override of its own subjects does."""
        gate = self.pre["qc_gate"]
        override = {s: v for s, v in gate["override"].items() if splits is None or self.split.get(s) in splits}
        return {"table": self.group["prep_gate"], "enabled": gate["enabled"], "override": override}

    def gate_quality(self, training: bool) -> list[str]:
        """QC tables the gate decides on: the training and validation subjects' sessions (the gate job, which
        training waits for: a failed test subject cannot hold training up), or every session (the report)."""
        picked = {s for s in self.patients if self.split.get(s) in ("train", "validation")}
        sessions = [(s, t) for s, t in self.all_prep_sessions() if not training or s in picked]
        return [self.prep.qc(s, t, ".tsv") for s, t in sessions]

    def sr_image(self, subject: str, method: str, seq: str, space: bool = True) -> str:
        """Upsampled (or interpolated) clinical scan: template grid (space=True) or the native clinical grid."""
        kw = dict(subject=subject, session=self.clin, datatype="anat", desc=method, suffix=seq)
        return bids(self.sr_dir, space=self.tpl, **kw) if space else bids(self.sr_dir, **kw)

    def sr_images(self, subject: str, method: str, space: bool = True) -> str:
        """SEQ=PATH of the upsampled scans (``brainsr infer --out/--out-native``)."""
        return kv({q: self.sr_image(subject, method, q, space) for q in self.seqs})

    def sr_explain(self, subject: str, method: str) -> str:
        """The attention and Grad-CAM maps of an upsampled session (``.npz``)."""
        kw = dict(subject=subject, session=self.clin, datatype="anat", desc=method)
        return bids(self.sr_dir, **kw, suffix="explain", extension=".npz")

    def infer_inputs(self, sub: str, method: str) -> dict[str, Any]:
        """Files of `brainsr infer`: the clinical and research scans, the native images and transforms, the model."""
        prep, layout = self.method_prep(method), self.prep
        key = self.prep_spec(prep)[0]
        files: dict[str, Any] = {
            "images": [layout.image(sub, self.clin, prep, q) for q in self.seqs],
            "mask": layout.image_mask(sub, self.clin, prep),
            "target": [layout.image(sub, self.res, prep, q) for q in self.seqs],
            "native": [layout.brain(sub, self.clin, q) for q in self.seqs],
            "xfm": [layout.tpl_xfm(sub, self.clin, key, inverse=True)]
            + [layout.seq_xfm(sub, self.clin, q) for q in self.seqs[1:]],
        }
        if method in self.experiments:
            files["model"] = self.model_file(method)
        return files

    def infer_native_json(self, sub: str, method: str) -> str:
        """Per sequence the native reference and the transform chain from the template grid back onto it."""
        inverse = self.prep.tpl_xfm(sub, self.clin, self.prep_spec(self.method_prep(method))[0], inverse=True)
        spec = {}
        for q in self.seqs:
            seq_xfm = None if q == self.seqs[0] else self.prep.seq_xfm(sub, self.clin, q)
            transforms, invert = native_chain(inverse, seq_xfm)
            spec[q] = {"reference": self.prep.brain(sub, self.clin, q), "transforms": transforms, "invert": invert}
        return json.dumps(spec, sort_keys=True)

    def sr_outputs(self, subject: str, method: str) -> list[str]:
        """Everything `brainsr infer` writes for one session and method."""
        seqs = self.seqs
        files = [self.sr_image(subject, method, q) for q in seqs]
        files += [self.sr_image(subject, method, q, space=False) for q in seqs]
        return files + [f.replace(".nii.gz", ".json") for f in files] + [self.sr_explain(subject, method)]

    def all_sr_targets(self) -> list[str]:
        """The super-resolution files of the run."""
        files = [self.group["sr_description"]]
        if self.sr_trainable:
            files += [self.group["sr_validation"]] + [self.model_file(e) for e in self.experiments]
        return files + [f for s in self.sr_subjects for m in self.methods for f in self.sr_outputs(s, m)]

    # --- evaluation and report (paper 3.8, 4.2-4.9) ------------------------------------------------------------
    # A "scan set" is the three sequences of one session on the analysis grid, named by (subject, session, desc):
    # clinical session, desc = a method (upsampled or interpolated scans); research / month-NN, desc = a prep.

    def _init_evaluate(self) -> None:
        ev = self.ev = self.config["evaluate"]
        self.eval_dir, self.report_dir = f"{self.out}/evaluate", f"{self.out}/report"
        self.rating_dir = f"{self.out}/rating"
        self.rating_key = f"{self.out}/rating_key/key.csv"  # kept out of rating/: raters get that folder alone
        self.lesion_prior = bids(self.eval_dir, space=self.tpl, res=self.grid_res, label="lesion", suffix="probseg")
        # A control visit: any session label but the research and clinical ones (their scan sets have their rules).
        res, clin = re.escape(self.res), re.escape(self.clin)
        self.month_pattern = rf"(?!(?:{res}|{clin})(?![A-Za-z0-9]))[A-Za-z0-9]+"
        if ev["showcase"] and ev["showcase"] not in self.methods:
            raise LayoutError(f"evaluate.showcase {ev['showcase']!r} is not built (methods: {self.methods})")
        candidates = [ev["showcase"]] if ev["showcase"] else ["model0"] if "model0" in self.methods else []
        candidates += [m for m in self.methods if m in self.experiments] + self.methods
        #: The method of Figs. 5-12 and the rating sheet: evaluate.showcase, else model0, else the first method.
        self.showcase = next(iter(candidates), None)
        #: Its interpolation baseline (interp<prep>; None without a showcase).
        self.showcase_baseline = f"interp{self.method_prep(self.showcase)}" if self.showcase else None
        test = [s for s in self.sr_subjects if self.split.get(s) == "test"]
        self.showcase_subject = (test or self.sr_subjects or [None])[0]
        #: Whether the report's subject figures and rating sheet are made (a showcased subject and method).
        self.showcased = bool(self.sr_subjects) and bool(self.showcase)

    def eval_file(self, subject: str, session: str, desc: str, kind: str) -> str:
        """evaluate/sub-*/ses-*/anat/..._space-<tpl>_desc-<desc>_<kind>.<ext> (kind: imagemetrics, quality, dseg,
        volumes, agreement; tissues = the research T1w's CSF/GM/WM labels of quality metrics)."""
        suffix, ext = _EVAL_KINDS[kind]
        label = "T1tissue" if kind.startswith("tissue") else None
        kw = dict(subject=subject, session=session, datatype="anat", space=self.tpl, label=label, desc=desc)
        return bids(self.eval_dir, **kw, suffix=suffix, extension=ext)

    def scan_prep(self, session: str, desc: str) -> str:
        """The prep whose grid and reference a scan set uses: the method's prep, or desc itself (research)."""
        return self.method_prep(desc) if session == self.clin else desc

    def scan_images(self, subject: str, session: str, desc: str) -> dict[str, str]:
        """{sequence: path} of a scan set: upsampled/interpolated clinical, or preprocessed research/month scans."""
        if session == self.clin:
            return {q: self.sr_image(subject, desc, q) for q in self.seqs}
        return {q: self.prep.image(subject, session, desc, q) for q in self.seqs}

    def truth_dseg(self, subject: str, session: str) -> str:
        """The synthetic cohort's ground-truth tissue labels of a session, in template space."""
        kw = dict(subject=subject, session=session, datatype="anat", space=TEMPLATE_SPACE)
        return bids(self.gt_dir, **kw, desc="tissue", suffix="dseg")

    def scan_set_outputs(self, kind: str, session: str = "{session}") -> dict[str, str]:
        """{eval_file kind: path pattern} of one kind of scan set's evaluation job (research, clinical, month)."""
        kinds = [k for k in _SCAN_SET_OUTPUTS[kind] if self.synthetic or kind != "research" or k != "agreement"]
        return {k: self.eval_file("{subject}", session, "{desc}", k) for k in kinds}

    def scan_set_inputs(self, subject: str, session: str, desc: str) -> dict[str, Any]:
        """A scan set's images, its brain mask and the lesion prior; for a method, the research scan set of the
        same prep (images, brain mask, T1w tissue labels, classes); for synthetic patients, the ground truth
        (``lookup``: the ground truth's label table)."""
        prep, res, layout = self.scan_prep(session, desc), self.res, self.prep
        files: dict[str, Any] = {
            "images": list(self.scan_images(subject, session, desc).values()),
            "mask": layout.image_mask(subject, session, prep),
            "prior": self.lesion_prior,
        }
        if session == self.clin:
            files["research"] = [layout.image(subject, res, prep, q) for q in self.seqs]
            files["research_mask"] = layout.image_mask(subject, res, prep)
            files["tissues"] = self.eval_file(subject, res, prep, "tissues")
            files["reference"] = self.eval_file(subject, res, prep, "dseg")
        if self.synthetic and session in (self.clin, res):
            files.update(self.truth_inputs(subject, session, prep))
        return files

    def truth_inputs(self, subject: str, session: str, prep: str) -> dict[str, Any]:
        """The ground truth of a synthetic session and its way onto the ``prep`` grid: the prep's template -> T1w
        transform, the session's true T1w pose and the true subject -> template field (``TruthPath``)."""
        xfm = dict(subject=subject, suffix="xfm", mode="image")
        return {
            "truth": self.truth_dseg(subject, session),
            "lookup": self.dataset["gt_lookup"],
            "truth_chain": [self.prep.tpl_xfm(subject, session, self.prep_spec(prep)[0])],
            "truth_pose": bids(
                self.gt_dir, **xfm, session=session, datatype="anat", extension=".txt", from_="subject", to="T1w"
            ),
            "truth_field": bids(self.gt_dir, **xfm, from_="subject", to=TEMPLATE_SPACE),
        }

    def months(self) -> dict[str, dict[str, int]]:
        """{control: {session: month}}: the month is the number after the longitudinal prefix (else the order)."""
        prefix = self.sessions["longitudinal_prefix"]
        out: dict[str, dict[str, int]] = {}
        for sub in self.controls:
            out[sub] = {}
            for i, ses in enumerate(self.all_sessions(sub)):
                rest = ses[len(prefix) :] if ses.startswith(prefix) else ""
                out[sub][ses] = int(rest) if rest.isdigit() else i
        return out

    def method_info(self, method: str) -> dict[str, Any]:
        """A method's prep, kind (experiment or interpolation) and settings, for the group tables."""
        kind = "experiment" if method in self.experiments else "interpolation"
        return {"prep": self.method_prep(method), "kind": kind, "settings": self.experiments.get(method, {})}

    def scan_sets(self) -> list[tuple[str, str, str]]:
        """Every evaluated (subject, session, desc): methods and research preps of sr_subjects; controls' months."""
        subjects, preps = self.sr_subjects, sorted({self.method_prep(m) for m in self.methods})
        sets = [(s, self.clin, m) for s in subjects for m in self.methods]
        sets += [(s, self.res, p) for s in subjects for p in preps]
        return sets + [(c, ses, self.pre["primary"]) for c in self.controls for ses in self.all_sessions(c)]

    def group_spec(self) -> str:
        """JSON spec of `brainsr report tables`: subjects, methods, models and the evaluation files' name patterns."""
        pattern = {
            k: self.eval_file("{subject}", "{session}", "{desc}", k) for k in ("quality", "volumes", "agreement")
        }
        pattern["image"] = self.eval_file("{subject}", "{session}", "{desc}", "imagemetrics")
        table1, methods = list(self.ev["table1"]), self.methods
        spec = {
            "subjects": {s: self.subject_protocol(s) for s in self.sr_subjects},
            "methods": {m: self.method_info(m) for m in methods},
            "models": {e: self.model_file(e, "summary") for e in self.experiments if e in methods},
            "table1": table1,
            "controls": self.months(),
            "primary": self.pre["primary"],
            "showcase": self.showcase,
            # issue 20's per-subject claims: training subjects per protocol (which test subjects qualify)
            "training_protocols": dict(Counter(self.subject_protocol(s) for s in self.split_subjects("train"))),
            # Fig. 10: the showcase's interpolation baseline beside Table 1's models (paper: "upsampled by
            # different procedures", interpolation included)
            "figure_methods": [m for m in dict.fromkeys([self.showcase_baseline, *table1]) if m in methods]
            or methods[:1],
            "truth": self.synthetic,
            "sessions": {"clinical": self.clin, "research": self.res},
            "patterns": pattern,
            "qc_gate": {
                **self.gate_spec(),
                "quality": self.gate_quality(training=False),
                "ledger": self.gate_ledger,
                "settings": self.pre["qc_gate"],
                "prep": self.pre["primary"],
            },
        }
        return json.dumps(spec, sort_keys=True)

    def group_inputs(self) -> list[str]:
        """Every file `brainsr report tables` reads (see group_spec)."""
        files = []
        for sub, ses, desc in self.scan_sets():
            kinds = ["volumes"]
            if sub in self.sr_subjects:
                kinds += ["quality"] + (["agreement"] if ses == self.clin or self.synthetic else [])
                kinds += ["imagemetrics"] if ses == self.clin else []
            files += [self.eval_file(sub, ses, desc, k) for k in kinds]
        files += [self.model_file(e, "summary") for e in self.experiments if e in self.methods]
        return [*files, self.group["prep_gate"], *self.gate_quality(training=False)]

    def table_file(self, key: str) -> str:
        """tables/<group table> (GROUP_TABLES)."""
        return f"{self.tables}/{GROUP_TABLES[key]}"

    def figure_file(self, key: str) -> str:
        """figures/<group or subject figure>."""
        return f"{self.figures}/{GROUP_FIGURES.get(key) or SUBJECT_FIGURES[key]}"

    def report_table_file(self, key: str) -> str:
        """report/<table>.html: a group table as the HTML page the report shows (a TSV could only be downloaded)."""
        return f"{self.report_dir}/{os.path.splitext(GROUP_TABLES[key])[0]}.html"

    def subject_figure_spec(self) -> dict[str, Any]:
        """The spec of `brainsr report figures` for the showcased subject and method."""
        sub, method, baseline = self.showcase_subject, self.showcase, self.showcase_baseline
        prep, image, res, clin = self.method_prep(method), self.prep.image, self.res, self.clin
        images = {
            q: {
                "input": image(sub, clin, prep, q),
                "generated": self.sr_image(sub, method, q),
                "target": image(sub, res, prep, q),
            }
            for q in self.seqs
        }
        research = {"flair": image(sub, res, prep, "FLAIR"), "dseg": self.eval_file(sub, res, prep, "dseg")}
        segs = {"research": research}
        if baseline in self.methods and baseline != method:
            segs[f"interpolated ({baseline})"] = {
                "flair": self.sr_image(sub, baseline, "FLAIR"),
                "dseg": self.eval_file(sub, clin, baseline, "dseg"),
            }
        segs[method] = {"flair": self.sr_image(sub, method, "FLAIR"), "dseg": self.eval_file(sub, clin, method, "dseg")}
        return {
            "subject": sub,
            "method": method,
            "baseline": baseline,
            "sequences": list(self.seqs),  # channel order: the spec's keys are sorted
            "images": images,
            "mask": self.prep.image_mask(sub, res, prep),
            "explain": self.sr_explain(sub, method),
            "segmentations": segs,
        }

    def subject_figure_files(self) -> list[str]:
        """Every path in the figures spec (its images, masks, maps and segmentations); none without a showcase."""
        if not self.showcased:
            return []
        spec = self.subject_figure_spec()
        files = [f for row in spec["images"].values() for f in row.values()] + [spec["mask"], spec["explain"]]
        return files + [f for seg in spec["segmentations"].values() for f in seg.values()]

    def subject_figure_json(self) -> str:
        """The figures spec as JSON (``{}`` without a showcase)."""
        return json.dumps(self.subject_figure_spec(), sort_keys=True) if self.showcased else "{}"

    def rating_spec(self) -> dict[str, Any]:
        """{subject: {research, interpolated, upsampled: {seq: path}}} of the evaluated subjects (paper 3.8.4)."""
        prep, image, seqs = self.method_prep(self.showcase), self.prep.image, self.seqs
        return {
            s: {
                "research": {q: image(s, self.res, prep, q) for q in seqs},
                "interpolated": {q: image(s, self.clin, prep, q) for q in seqs},
                "upsampled": {q: self.sr_image(s, self.showcase, q) for q in seqs},
            }
            for s in self.sr_subjects
        }

    def rating_files(self) -> list[str]:
        """Every scan of the rating sheet (none without a showcased method)."""
        if not self.showcase:
            return []
        return [f for sets in self.rating_spec().values() for seqs in sets.values() for f in seqs.values()]

    def rating_json(self) -> str:
        """The rating spec as JSON (``{}`` without a showcased method)."""
        return json.dumps(self.rating_spec(), sort_keys=True) if self.showcase else "{}"

    def all_eval_targets(self) -> list[str]:
        """The evaluation and report files of the run (none without evaluated subjects or a showcase)."""
        if not self.sr_subjects or self.showcase is None:
            return []
        files = [self.table_file(k) for k in GROUP_TABLES] + [self.figure_file(k) for k in GROUP_FIGURES]
        files += [self.figure_file(k) for k in SUBJECT_FIGURES]
        return [*files, f"{self.rating_dir}/sheet.csv", self.rating_key]
