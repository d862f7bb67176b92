"""File names of the preprocessing derivatives (paper 3.1), one place for the rules, the chain and ``upsample``.

Every name is a BIDS-derivatives path under ``root`` built with :func:`brainsr.paths.bids`, so labels may be
Snakemake placeholders (``"{subject}"``). :meth:`PrepLayout.session_outputs` lists what one session's
preprocessing job writes, for the rule's outputs and for :func:`brainsr.preprocess.chain.preprocess_session`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from brainsr.paths import bids

__all__ = ["PrepLayout", "sidecar"]


def sidecar(image: str) -> str:
    """The JSON sidecar of a ``.nii.gz`` image."""
    return image.removesuffix(".nii.gz") + ".json"


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
