"""Discovery of the paired clinical/research BIDS dataset with pybids.

Every subject of the paper's cohort has a low-resolution ``clinical`` session and a high-resolution
``research`` session, each with the structural sequences T1w, T2w and FLAIR (datatype ``anat``). Control
subjects only have repeated research sessions (``ses-month00``, ``ses-month01``, ...). :func:`discover`
indexes the dataset, checks that every session has exactly one image per sequence and sorts subjects into
:class:`Pair` and :class:`Longitudinal` records, collecting human-readable problems for everything else.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bids as pybids
import pandas as pd

from brainsr import SEQUENCES
from brainsr.paths import label_ok

__all__ = [
    "DEFAULT_SPLIT_FRACTIONS",
    "SEQUENCES",
    "SPLITS",
    "BIDSInputError",
    "ImageRecord",
    "Inventory",
    "Longitudinal",
    "Pair",
    "SessionImages",
    "assign_split",
    "discover",
    "discover_configured",
    "read_participants",
]

#: Valid split names, in order.
SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: Split fractions used when participants.tsv does not give a subject's split.
DEFAULT_SPLIT_FRACTIONS: dict[str, float] = {"train": 0.66, "validation": 0.17, "test": 0.17}

_EXTENSIONS = [".nii", ".nii.gz"]
_DATATYPE = "anat"
# Short BIDS entity names accepted in `bids_filters`, mapped to pybids' entity names.
_FILTER_ALIASES = {
    "sub": "subject",
    "ses": "session",
    "acq": "acquisition",
    "ce": "ceagent",
    "trc": "tracer",
    "stain": "staining",
    "rec": "reconstruction",
    "dir": "direction",
    "mod": "modality",
}
# Filter keys fixed by discovery itself.
_RESERVED_FILTERS = {"subject", "session", "suffix", "datatype", "extension"}
# Prefix of problems that are only warnings: they never exclude data and do not fail strict mode.
_WARNING = "warning: "


class BIDSInputError(ValueError):
    """The input dataset cannot be used; the message names the file or subject and the problem."""


@dataclass(frozen=True)
class SessionImages:
    """The images of one session: sequence suffix -> file."""

    subject: str
    session: str
    images: dict[str, Path]


@dataclass(frozen=True)
class Pair:
    """A subject's clinical and research sessions, with its acquisition protocol and split."""

    subject: str
    clinical: SessionImages
    research: SessionImages
    protocol: str | None
    split: str | None
    #: True when the split comes from participants.tsv (the user's choice), False when assigned by hash.
    split_declared: bool = False


@dataclass(frozen=True)
class Longitudinal:
    """A control subject's repeated research sessions, ordered by session label."""

    subject: str
    sessions: list[SessionImages]


@dataclass(frozen=True)
class ImageRecord:
    """One expected image (subject/session/sequence) and what discovery found for it.

    ``status`` is ``"ok"`` (exactly one file), ``"missing"`` or ``"ambiguous"`` (several candidates);
    ``candidates`` lists every matching file.
    """

    subject: str
    session: str
    role: str  # "clinical", "research", "longitudinal" or "other"
    sequence: str
    status: str
    candidates: tuple[Path, ...] = ()

    @property
    def path(self) -> Path | None:
        """The image when exactly one candidate was found."""
        return self.candidates[0] if self.status == "ok" else None


@dataclass
class Inventory:
    """Result of :func:`discover`: usable pairs, longitudinal controls and the problems found."""

    root: Path
    pairs: list[Pair]
    longitudinal: list[Longitudinal]
    problems: list[str]
    #: Every expected image of every subject, including those left out (for tables and reports).
    records: list[ImageRecord] = field(default_factory=list)

    @property
    def subjects(self) -> list[str]:
        """Labels of the paired subjects, sorted."""
        return sorted(p.subject for p in self.pairs)

    @property
    def errors(self) -> list[str]:
        """The problems that are not mere warnings."""
        return [p for p in self.problems if not p.startswith(_WARNING)]

    def by_split(self, name: str) -> list[Pair]:
        """The pairs in split *name* (``train``, ``validation`` or ``test``), sorted by subject."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r} (expected one of {', '.join(SPLITS)})")
        return sorted((p for p in self.pairs if p.split == name), key=lambda p: p.subject)

    def pair(self, subject: str) -> Pair:
        """The pair of *subject* (label with or without ``sub-``); KeyError if it is not a usable pair."""
        label = subject.removeprefix("sub-")
        for p in self.pairs:
            if p.subject == label:
                return p
        raise KeyError(f"sub-{label} is not a usable clinical/research pair in {self.root}")

    def to_dataframe(self) -> pd.DataFrame:
        """One row per subject/session/sequence with its path, status, split, protocol and use."""
        pairs = {p.subject: p for p in self.pairs}
        controls = {c.subject for c in self.longitudinal}
        rows = []
        for r in self.records:
            pair = pairs.get(r.subject)
            if pair is not None:
                used = r.role in ("clinical", "research")
            else:
                used = r.subject in controls and r.role == "longitudinal"
            rows.append(
                {
                    "subject": r.subject,
                    "session": r.session,
                    "role": r.role,
                    "sequence": r.sequence,
                    "path": str(r.path) if r.path is not None else None,
                    "status": r.status,
                    "n_candidates": len(r.candidates),
                    "split": pair.split if pair is not None else None,
                    "protocol": pair.protocol if pair is not None else None,
                    "used": used,
                }
            )
        columns = [
            "subject", "session", "role", "sequence", "path", "status",
            "n_candidates", "split", "protocol", "used",
        ]  # fmt: skip
        return pd.DataFrame(rows, columns=columns)


def _natural_key(label: str) -> list[object]:
    """Sort key ordering embedded numbers numerically (month2 < month10)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", label)]


def _check_root(root: str | Path) -> Path:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise BIDSInputError(f"BIDS dataset {path}: directory does not exist")
    description = path / "dataset_description.json"
    if not description.is_file():
        raise BIDSInputError(
            f"BIDS dataset {path}: no dataset_description.json (every BIDS dataset needs one at its root)"
        )
    try:
        json.loads(description.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BIDSInputError(f"{description}: not a valid JSON file ({err})") from err
    return path.resolve()


def read_participants(root: str | Path) -> pd.DataFrame:
    """Read ``participants.tsv`` into a DataFrame indexed by subject label (without ``sub-``).

    All columns are strings, with ``n/a`` and empty cells as missing values. A missing file gives an empty
    frame (:func:`discover` records a warning); a malformed file raises :class:`BIDSInputError` naming it.
    """
    path = Path(root) / "participants.tsv"
    if not path.is_file():
        return pd.DataFrame(index=pd.Index([], name="subject", dtype=str))
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise BIDSInputError(f"{path}: cannot read participants table ({err})") from err
    if not lines or not lines[0].strip():
        raise BIDSInputError(f"{path}: empty participants table (expected a header with participant_id)")
    width = len(lines[0].split("\t"))
    for number, line in enumerate(lines[1:], start=2):
        fields = len(line.split("\t"))
        if line.strip() and fields != width:
            raise BIDSInputError(f"{path}: line {number} has {fields} tab-separated fields, the header {width}")
    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, na_values=["n/a"], keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise BIDSInputError(f"{path}: malformed participants table ({err})") from err
    if "participant_id" not in frame.columns:
        raise BIDSInputError(f"{path}: no 'participant_id' column (columns: {', '.join(frame.columns)})")
    ids = frame["participant_id"]
    if ids.isna().any():
        rows = [int(i) + 2 for i in frame.index[ids.isna()]]
        raise BIDSInputError(f"{path}: empty participant_id on line(s) {rows}")
    labels = ids.str.strip().str.removeprefix("sub-")
    duplicated = sorted(set(labels[labels.duplicated()]))
    if duplicated:
        raise BIDSInputError(f"{path}: duplicate participant_id {', '.join('sub-' + d for d in duplicated)}")
    frame = frame.drop(columns="participant_id")
    frame.index = pd.Index(labels, name="subject")
    return frame


def _unit_interval(seed: int, label: str) -> float:
    """Map (seed, label) to a stable pseudo-random number in [0, 1)."""
    digest = hashlib.sha256(f"brainsr-split:{seed}:{label}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_split(subjects: Iterable[str], fractions: Mapping[str, float], seed: int) -> dict[str, str]:
    """Assign every subject to a split, deterministically and by subject.

    A subject's split depends only on ``(seed, label)`` through a SHA-256 hash mapped to [0, 1) and bucketed
    by the cumulative *fractions* (in their given order), so adding subjects never moves existing ones.
    Fractions must be non-negative and sum to 1 (within 1e-6), else ValueError.
    """
    if not fractions:
        raise ValueError("split fractions: at least one split is required")
    for name, value in fractions.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise ValueError(f"split fractions: {name!r} must be a non-negative number, got {value!r}")
    total = float(sum(fractions.values()))
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, got {total:g} ({dict(fractions)})")
    names = list(fractions)
    bounds = []
    cumulative = 0.0
    for name in names:
        cumulative += float(fractions[name])
        bounds.append(cumulative)
    last = max(i for i, name in enumerate(names) if fractions[name] > 0)
    result = {}
    for subject in subjects:
        u = _unit_interval(seed, subject)
        index = next((i for i, b in enumerate(bounds) if u < b and fractions[names[i]] > 0), last)
        result[subject] = names[index]
    return result


def _normalise_filters(filters: Mapping[str, Mapping] | None, sequences: Sequence[str]) -> dict[str, dict]:
    """Validate ``bids_filters`` ({sequence: {entity: value}}) and convert keys to pybids entity names."""
    result: dict[str, dict] = {}
    for sequence, query in (filters or {}).items():
        if sequence not in sequences:
            raise BIDSInputError(f"bids_filters: {sequence!r} is not one of the sequences ({', '.join(sequences)})")
        if not isinstance(query, Mapping):
            raise BIDSInputError(f"bids_filters.{sequence}: expected a mapping of entity -> value")
        converted = {}
        for key, value in query.items():
            name = _FILTER_ALIASES.get(key, key)
            if name in _RESERVED_FILTERS:
                raise BIDSInputError(f"bids_filters.{sequence}: {key!r} is set by the workflow itself")
            converted[name] = value
        result[sequence] = converted
    return result


def _make_layout(root: Path, subject_dirs: list[str]) -> pybids.BIDSLayout:
    """Index only the given ``sub-*`` folders (no derivatives, sourcedata or metadata)."""
    keep = set(subject_dirs)
    ignore: list[object] = [
        re.compile(r"^/" + re.escape(child.name) + r"(/|$)")
        for child in root.iterdir()
        if child.is_dir() and child.name not in keep
    ]
    ignore.append(re.compile(r"^/(code|models|sourcedata|stimuli|derivatives)(/|$)"))
    indexer = pybids.BIDSLayoutIndexer(validate=False, index_metadata=False, ignore=ignore)
    return pybids.BIDSLayout(root, validate=False, derivatives=False, indexer=indexer)


def _query(layout: pybids.BIDSLayout, root: Path, subject: str, session: str, sequence: str, query: dict) -> list[Path]:
    try:
        files = layout.get(
            subject=subject,
            session=session,
            suffix=sequence,
            datatype=_DATATYPE,
            extension=_EXTENSIONS,
            return_type="filename",
            **query,
        )
    except ValueError as err:  # pybids rejects unknown entities
        raise BIDSInputError(f"bids_filters.{sequence}: invalid filter {query} ({err})") from err
    # Guard against pybids' path regexes picking up files of other folders.
    folder = root / f"sub-{subject}" / f"ses-{session}" / _DATATYPE
    return sorted(Path(f) for f in files if Path(f).parent == folder)


def _expected(subject: str, session: str, sequence: str) -> str:
    return f"sub-{subject}_ses-{session}_{sequence}.nii[.gz]"


def _check_session_labels(clinical: str, research: str, longitudinal_prefix: str) -> None:
    """Raise BIDSInputError unless the session labels are valid BIDS labels and clinical differs from research."""
    for label in (clinical, research, longitudinal_prefix):
        if not label_ok(label):
            raise BIDSInputError(f"session label {label!r} is not a valid BIDS label (letters and digits)")
    if clinical == research:
        raise BIDSInputError(f"the clinical and research session labels are both {clinical!r}")


def _split_fractions(split_fractions: Mapping[str, float] | None, split_seed: int) -> dict[str, float]:
    """The split fractions to assign undeclared subjects with (the defaults when None), validated."""
    fractions = dict(DEFAULT_SPLIT_FRACTIONS if split_fractions is None else split_fractions)
    unknown = sorted(set(fractions) - set(SPLITS))
    if unknown:
        raise ValueError(f"split fractions: unknown split(s) {unknown} (expected {', '.join(SPLITS)})")
    assign_split([], fractions, split_seed)  # validates the fractions early
    return fractions


@dataclass
class _Scan:
    """Settings and findings of one :func:`discover` run, shared by its steps."""

    path: Path
    sequences: tuple[str, ...]
    queries: dict[str, dict]
    clinical: str
    research: str
    longitudinal_prefix: str
    layout: pybids.BIDSLayout | None = None
    problems: list[str] = field(default_factory=list)
    records: list[ImageRecord] = field(default_factory=list)


def _subject_dirs(scan: _Scan) -> list[str]:
    """The ``sub-<label>`` folders with a valid label (the others recorded as problems)."""
    subject_dirs = []
    for child in sorted(scan.path.glob("sub-*")):
        if not child.is_dir():
            continue
        label = child.name.removeprefix("sub-")
        if label_ok(label):
            subject_dirs.append(child.name)
        else:
            scan.problems.append(
                f"{child.name}: invalid subject label {label!r} (BIDS labels may only contain letters "
                "and digits); subject ignored"
            )
    if not subject_dirs:
        scan.problems.append(f"{scan.path}: no valid sub-<label> folders found")
    return subject_dirs


def _session_labels(scan: _Scan, subject_dir: str) -> list[str]:
    """The valid session labels of a subject folder (invalid ones recorded as problems)."""
    session_dirs = sorted(p.name for p in (scan.path / subject_dir).glob("ses-*") if p.is_dir())
    sessions = []
    for name in session_dirs:
        label = name.removeprefix("ses-")
        if label_ok(label):
            sessions.append(label)
        else:
            scan.problems.append(f"{subject_dir}: invalid session label {label!r} in {name}; session ignored")
    return sessions


def _session_roles(scan: _Scan, subject_dir: str, sessions: list[str], is_pair: bool) -> list[tuple[str, str]] | None:
    """The (session, role) pairs a subject needs: clinical + research for a pair, every session for a longitudinal
    control; None (a problem recorded) when its sessions are neither."""
    if is_pair:
        return [(scan.clinical, "clinical"), (scan.research, "research")]
    if all(s.startswith(scan.longitudinal_prefix) for s in sessions):
        return [(s, "longitudinal") for s in sorted(sessions, key=_natural_key)]
    others = ", ".join(f"ses-{s}" for s in sessions)
    scan.problems.append(
        f"{subject_dir}: sessions {others} are neither ses-{scan.clinical} + ses-{scan.research} nor all "
        f"ses-{scan.longitudinal_prefix}<NN>; subject ignored"
    )
    return None


def _session_images(scan: _Scan, subject: str, subject_dir: str, session: str, role: str) -> dict[str, Path]:
    """The sequences of one session found exactly once (missing and ambiguous ones recorded as problems)."""
    images: dict[str, Path] = {}
    for sequence in scan.sequences:
        files = _query(scan.layout, scan.path, subject, session, sequence, scan.queries.get(sequence, {}))
        if len(files) == 1:
            images[sequence] = files[0]
            scan.records.append(ImageRecord(subject, session, role, sequence, "ok", tuple(files)))
        elif not files:
            scan.records.append(ImageRecord(subject, session, role, sequence, "missing"))
            hint = f" matching bids_filters {scan.queries[sequence]}" if scan.queries.get(sequence) else ""
            scan.problems.append(
                f"sub-{subject}: session '{session}' lacks {sequence}{hint} "
                f"(expected {_expected(subject, session, sequence)} in "
                f"{subject_dir}/ses-{session}/{_DATATYPE})"
            )
        else:
            scan.records.append(ImageRecord(subject, session, role, sequence, "ambiguous", tuple(files)))
            names = ", ".join(f.name for f in files)
            scan.problems.append(
                f"sub-{subject}: session '{session}' has {len(files)} candidate {sequence} images "
                f"({names}); select one with the `bids_filters` config key, e.g. "
                f"bids_filters: {{{sequence}: {{acquisition: <label>}}}}"
            )
    return images


def _scan_subject(scan: _Scan, subject_dir: str) -> tuple[bool, list[SessionImages]] | None:
    """One subject folder: (whether it is a pair, its sessions' images), or None when the subject is left out."""
    subject = subject_dir.removeprefix("sub-")
    sessions = _session_labels(scan, subject_dir)
    if not sessions:
        scan.problems.append(
            f"{subject_dir}: no sessions (expected ses-{scan.clinical} and ses-{scan.research}, "
            f"or ses-{scan.longitudinal_prefix}<NN>)"
        )
        return None
    is_pair = scan.clinical in sessions or scan.research in sessions
    wanted = _session_roles(scan, subject_dir, sessions, is_pair)
    if wanted is None:
        return None
    complete = True
    found: list[SessionImages] = []
    for session, role in wanted:
        if session not in sessions:
            complete = False
            scan.records.extend(ImageRecord(subject, session, role, seq, "missing") for seq in scan.sequences)
            scan.problems.append(
                f"sub-{subject}: missing session '{session}' (no folder {subject_dir}/ses-{session}); "
                "subject left out of the pairs"
            )
            continue
        images = _session_images(scan, subject, subject_dir, session, role)
        if len(images) == len(scan.sequences):
            found.append(SessionImages(subject, session, images))
        else:
            complete = False
    return (is_pair, found) if complete else None


def _sort_subjects(
    scan: _Scan, subject_dirs: list[str]
) -> tuple[dict[str, tuple[SessionImages, SessionImages]], list[Longitudinal]]:
    """Sort the subject folders into ({subject: (clinical, research)}, longitudinal controls); the rest is left out."""
    pairs_found: dict[str, tuple[SessionImages, SessionImages]] = {}
    longitudinal: list[Longitudinal] = []
    for subject_dir in subject_dirs:
        scanned = _scan_subject(scan, subject_dir)
        if scanned is None:
            continue
        is_pair, found = scanned
        subject = subject_dir.removeprefix("sub-")
        if is_pair:
            pairs_found[subject] = (found[0], found[1])
        else:
            longitudinal.append(Longitudinal(subject, found))
    return pairs_found, longitudinal


def _declared_splits(
    scan: _Scan, subjects: Iterable[str], participants: pd.DataFrame, split_column: str, has_participants: bool
) -> tuple[dict[str, str], set[str]]:
    """Splits given in participants.tsv: ({subject: split}, subjects with an invalid split value)."""
    declared: dict[str, str] = {}
    has_split = split_column in participants.columns
    invalid_split: set[str] = set()
    for subject in subjects:
        if subject not in participants.index:
            if has_participants:
                scan.problems.append(f"{_WARNING}sub-{subject} is not listed in participants.tsv")
            continue
        if has_split:
            value = participants.at[subject, split_column]
            if pd.isna(value) or str(value).strip() == "":
                continue
            value = str(value).strip()
            if value in SPLITS:
                declared[subject] = value
            else:
                invalid_split.add(subject)
                scan.problems.append(
                    f"sub-{subject}: invalid {split_column!r} value {value!r} in participants.tsv "
                    f"(expected one of {', '.join(SPLITS)}); subject left out of the pairs"
                )
    return declared, invalid_split


def _build_pairs(
    pairs_found: dict[str, tuple[SessionImages, SessionImages]],
    participants: pd.DataFrame,
    declared: dict[str, str],
    invalid_split: set[str],
    assigned: dict[str, str],
) -> list[Pair]:
    """The usable pairs, sorted by subject, with their protocol (participants.tsv) and split."""
    pairs = []
    for subject, (clin, res) in sorted(pairs_found.items()):
        if subject in invalid_split:
            continue
        protocol = None
        if "protocol" in participants.columns and subject in participants.index:
            value = participants.at[subject, "protocol"]
            protocol = None if pd.isna(value) else str(value)
        split = declared.get(subject, assigned.get(subject))
        pairs.append(Pair(subject, clin, res, protocol, split, split_declared=subject in declared))
    return pairs


def discover(
    root: str | Path,
    *,
    clinical: str = "clinical",
    research: str = "research",
    longitudinal_prefix: str = "month",
    sequences: Sequence[str] = SEQUENCES,
    filters: dict[str, dict] | None = None,
    split_column: str = "split",
    split_fractions: Mapping[str, float] | None = None,
    split_seed: int = 2022,
    strict: bool = False,
) -> Inventory:
    """Index the BIDS dataset at *root* and sort its subjects into pairs and longitudinal controls.

    A subject with a *clinical* and a *research* session that each hold exactly one image per sequence
    (``anat``, ``.nii`` or ``.nii.gz``) is a :class:`Pair`; its split comes from *split_column* of
    participants.tsv when given there, else from :func:`assign_split` with *split_fractions* and
    *split_seed*; its protocol from the ``protocol`` column. A subject whose sessions all start with
    *longitudinal_prefix* and are complete is :class:`Longitudinal`. *filters* (``bids_filters``:
    ``{sequence: {entity: value}}``, pybids or short entity names) select among several candidates.

    Everything else (missing or ambiguous images, missing sessions, invalid labels or splits) is recorded
    in ``Inventory.problems`` and the subject left out; with ``strict=True`` a :class:`BIDSInputError`
    listing all problems is raised instead (warnings, such as a missing participants.tsv, do not count).
    """
    path = _check_root(root)
    sequences = tuple(sequences)
    _check_session_labels(clinical, research, longitudinal_prefix)
    queries = _normalise_filters(filters, sequences)
    fractions = _split_fractions(split_fractions, split_seed)
    scan = _Scan(path, sequences, queries, clinical, research, longitudinal_prefix)

    participants = read_participants(path)
    has_participants = (path / "participants.tsv").is_file()
    if not has_participants:
        scan.problems.append(
            f"{_WARNING}{path / 'participants.tsv'} not found: no protocol information, and splits are "
            f"assigned from the fractions {fractions}"
        )
    subject_dirs = _subject_dirs(scan)
    scan.layout = _make_layout(path, subject_dirs) if subject_dirs else None

    pairs_found, longitudinal = _sort_subjects(scan, subject_dirs)

    # Splits and protocols of the pairs.
    declared, invalid_split = _declared_splits(scan, pairs_found, participants, split_column, has_participants)
    undeclared = [s for s in pairs_found if s not in declared and s not in invalid_split]
    assigned = assign_split(undeclared, fractions, split_seed)
    pairs = _build_pairs(pairs_found, participants, declared, invalid_split, assigned)

    inventory = Inventory(
        root=path,
        pairs=pairs,
        longitudinal=sorted(longitudinal, key=lambda c: c.subject),
        problems=scan.problems,
        records=scan.records,
    )
    if strict and inventory.errors:
        listing = "\n".join(f"  - {p}" for p in inventory.errors)
        raise BIDSInputError(f"BIDS dataset {path}: {len(inventory.errors)} problem(s):\n{listing}")
    return inventory


def discover_configured(root: str | Path, cfg: Mapping) -> Inventory:
    """:func:`discover` with the settings of a validated config (``sessions``, ``sequences``, ``bids_filters``,
    ``split`` sections)."""
    return discover(
        root,
        clinical=cfg["sessions"]["clinical"],
        research=cfg["sessions"]["research"],
        longitudinal_prefix=cfg["sessions"]["longitudinal_prefix"],
        sequences=tuple(cfg["sequences"]),
        filters=cfg["bids_filters"],
        split_column=cfg["split"]["column"],
        split_fractions=cfg["split"]["fractions"],
        split_seed=cfg["split"]["seed"],
    )
