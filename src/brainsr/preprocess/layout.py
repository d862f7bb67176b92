"""File names of the preprocessing derivatives (paper 3.1), one place for the rules, the chain and ``upsample``.

Every name is a BIDS-derivatives path under ``root`` built with :func:`brainsr.paths.bids`, so labels may be
Snakemake placeholders (``"{subject}"``). :meth:`PrepLayout.session_outputs` lists what one session's
preprocessing job writes, for the rule's outputs and for :func:`brainsr.preprocess.chain.preprocess_session`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from brainsr.paths import bids, sidecar

__all__ = [
    "INTENSITY_KEYS",
    "SETTING_KEYS",
    "PrepLayout",
    "initial_key",
    "intensity_settings",
    "native_chain",
    "prep_label",
    "prep_spec",
    "session_keys",
    "transform_keys",
]


def prep_label(alignment: str, variant: str | None) -> str:
    """Name of an alignment x resampling variant as used in ``desc-`` labels: ``affinelinear``, ``warp``."""
    return alignment if alignment == "warp" else f"{alignment}{variant}"


def prep_spec(prep: str, preprocess: Mapping[str, Any]) -> tuple[str, str]:
    """(template transform key, interpolation) of a prep label, e.g. ``affinelinear`` -> (``affinecr``, ``linear``)
    with the config's ``preprocess`` section (``variants``: cost and interpolation; ``warp_interpolation``)."""
    if prep == "warp":
        return "warp", str(preprocess["warp_interpolation"])
    for alignment in ("rigid", "affine"):
        if prep.startswith(alignment):
            variant = preprocess["variants"].get(prep[len(alignment) :])
            if variant is None:
                break
            return f"{alignment}{variant['cost']}", str(variant["interpolation"])
    raise ValueError(f"unknown prep {prep!r} (expected rigid<variant>, affine<variant> or warp)")


def native_chain(tpl_inverse: str, seq_to_t1w: str | None) -> tuple[list[str], list[bool]]:
    """ANTs transform list (and invert flags) that resamples a template-space image onto a native sequence grid.

    Points of the native grid go to the session T1w (inverse of ``from-<seq>_to-T1w``), then to the template
    (``from-<tpl>_to-T1w``, the kept inverse of the alignment; a displacement field for the warp).
    """
    if seq_to_t1w is None:
        return [tpl_inverse], [False]
    return [seq_to_t1w, tpl_inverse], [True, False]


def transform_keys(alignments: list[str], variants: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Template transforms to estimate (``rigidmi``, ``affinecr``, ``warp``...), each computed once and reused,
    in an order where every transform comes after the one it starts from: a correlation-ratio transform starts
    from the mutual-information one of the same alignment, the warp from ``affinemi``."""
    keys = []
    for alignment in ("rigid", "affine"):
        if alignment in alignments or (alignment == "affine" and "warp" in alignments):
            costs = {v["cost"] for v in variants.values()} if alignment in alignments else set()
            if costs or alignment == "affine":
                keys.append(f"{alignment}mi")  # also the start of the CR estimate and of the warp
            if "cr" in costs:
                keys.append(f"{alignment}cr")
    if "warp" in alignments:
        keys.append("warp")
    return keys


def initial_key(key: str) -> str | None:
    """The transform a registration starts from: ``<alignment>mi`` for ``<alignment>cr``, ``affinemi`` for the
    warp, none for the mutual-information registrations (ANTs initialises them by the centres of mass)."""
    if key == "warp":
        return "affinemi"
    if key.endswith("cr"):
        return key[: -len("cr")] + "mi"
    return None


#: Keys of the config's ``preprocess`` section that change a session's outputs (the rule's params).
SETTING_KEYS = (
    "bias", "brain", "iso_mm", "level_mm", "session_level_mm", "syn_iterations", "variants", "warp_interpolation",
    "rescale", "rescale_percentiles", "rescale_core_mm", "rescale_wm_level", "primary",
)  # fmt: skip


#: The config's keys (``preprocess`` section) that decide the scaling; recorded in every model file.
INTENSITY_KEYS = ("rescale", "rescale_percentiles", "rescale_core_mm", "rescale_wm_level")


def intensity_settings(pre: Mapping[str, Any], recorded: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The scaling settings of ``pre`` (a config's preprocess section), overridden by those ``recorded`` in a model
    file. A model file that records percentiles but no method was trained on percentile-scaled data."""
    out = {k: pre[k] for k in INTENSITY_KEYS}
    recorded = {k: v for k, v in (recorded or {}).items() if k in INTENSITY_KEYS and v is not None}
    if recorded and "rescale" not in recorded:
        recorded["rescale"] = "percentile"
    return {**out, **recorded}


def session_keys(preps: Sequence[str], pre: Mapping[str, Any]) -> list[str]:
    """Template transforms the preps need, with the ones they start from, each after its start
    (``affinelinear`` -> ``affinemi``, ``affinecr``; ``warp`` -> ``affinemi``, ``warp``)."""
    needed: set[str] = set()
    for prep in preps:
        key: str | None = prep_spec(prep, pre)[0]
        while key and key not in needed:
            needed.add(key)
            key = initial_key(key)
    every = transform_keys(["rigid", "affine", "warp"], pre["variants"])
    return [k for k in every if k in needed]


@dataclass(frozen=True)
class PrepLayout:
    """Names of one run's preprocessing files: ``root`` (``<output_dir>/preprocess``), template space label."""

    root: str
    space: str
    sequences: tuple[str, ...] = ("T1w", "T2w", "FLAIR")

    def _anat(self, subject: str, session: str, **entities: str | None) -> str:
        return bids(self.root, subject=subject, session=session, datatype="anat", **entities)

    def brain(self, subject: str, session: str, seq: str) -> str:
        """Bias-corrected, brain-extracted native image of one sequence."""
        return self._anat(subject, session, desc="brain", suffix=seq)

    def mask(self, subject: str, session: str) -> str:
        """Session brain mask on the isotropic T1w-space grid."""
        return self._anat(subject, session, space="T1w", desc="brain", suffix="mask")

    def seq_xfm(self, subject: str, session: str, seq: str) -> str:
        """Rigid transform resampling ``seq`` into the session T1w (ITK ``.mat``)."""
        return self._anat(subject, session, from_=seq, to="T1w", mode="image", suffix="xfm", extension=".mat")

    def tpl_xfm(self, subject: str, session: str, key: str, inverse: bool = False) -> str:
        """Template transform ``key`` (``affinemi``, ``warp``...) or its inverse (a field for the warp)."""
        ends = (self.space, "T1w") if inverse else ("T1w", self.space)
        ext = ".nii.gz" if key == "warp" else ".mat"
        return self._anat(
            subject, session, from_=ends[0], to=ends[1], desc=key, mode="image", suffix="xfm", extension=ext
        )

    def flirt(self, subject: str, session: str, *, seq: str | None = None, key: str | None = None) -> str:
        """FLIRT-convention copy (``.flirt.mat``) of a linear transform: ``seq`` -> T1w, or T1w -> template ``key``
        (:mod:`brainsr.preprocess.flirt`)."""
        ends, desc = ((seq, "T1w"), None) if seq else (("T1w", self.space), key)
        return self._anat(
            subject, session, from_=ends[0], to=ends[1], desc=desc, mode="image", suffix="xfm", extension=".flirt.mat"
        )

    def image(self, subject: str, session: str, prep: str, seq: str) -> str:
        """A sequence on the analysis grid under one prep, masked and rescaled."""
        return self._anat(subject, session, space=self.space, desc=prep, suffix=seq)

    def image_mask(self, subject: str, session: str, prep: str) -> str:
        """The session brain mask on the analysis grid under one prep."""
        return self._anat(subject, session, space=self.space, desc=prep, suffix="mask")

    def qc(self, subject: str, session: str, ext: str) -> str:
        """Alignment QC figure (``.png``, in ``figures/``) or alignment-quality table (``.tsv``)."""
        datatype = "figures" if ext == ".png" else "anat"
        return bids(
            self.root, subject=subject, session=session, datatype=datatype, space=self.space, desc="alignment",
            suffix="qc", extension=ext,
        )  # fmt: skip

    def accuracy(self, subject: str, session: str) -> str:
        """Accuracy against the synthetic ground truth (TRE, mask Dice, bias variation)."""
        return self._anat(subject, session, desc="accuracy", suffix="preproc", extension=".tsv")

    def session_outputs(
        self, subject: str, session: str, preps: Sequence[str], keys: Sequence[str]
    ) -> dict[str, list[str]]:
        """Everything one session's preprocessing job writes, by kind (``keys``: template transforms)."""
        seqs, later = self.sequences, self.sequences[1:]
        brains = [self.brain(subject, session, q) for q in seqs]
        images = [self.image(subject, session, p, q) for p in preps for q in seqs]
        return {
            "brain": brains,
            "brain_json": [sidecar(b) for b in brains],
            "mask": [self.mask(subject, session)],
            "seq_xfm": [self.seq_xfm(subject, session, q) for q in later],
            "tpl_xfm": [self.tpl_xfm(subject, session, k, inv) for k in keys for inv in (False, True)],
            "flirt": [self.flirt(subject, session, seq=q) for q in later]
            + [self.flirt(subject, session, key=k) for k in keys if k != "warp"],
            "images": images,
            "images_json": [sidecar(i) for i in images],
            "image_masks": [self.image_mask(subject, session, p) for p in preps],
            "qc_table": [self.qc(subject, session, ".tsv")],
            "qc_figure": [self.qc(subject, session, ".png")],
        }
