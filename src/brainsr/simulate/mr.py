"""MR physics of the synthetic cohort: tissue relaxation parameters and signal equations.

Tissue T1/T2 (ms) and proton density (PD, relative to water) at 1.5 T and 3 T are rounded literature values:
brain tissues after Wansapura et al. 1999 (JMRI 9:531), Stanisz et al. 2005 (MRM 54:507) and Lu et al. 2005
(CSF; JMRI 22:13); venous blood after Stanisz et al. 2005; white-matter hyperintensities and chronic infarcts as
reported for small vessel disease (T1 and T2 lengthened towards CSF). Extracranial tissues (fat, muscle, bone)
after Stanisz et al. 2005 and Bojorquez et al. 2017 (MRI 35:69).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Tissue classes of the anatomy model; the integer is the label in the ground-truth segmentation (dseg).
LABELS: dict[str, int] = {
    "background": 0,
    "csf": 1,
    "gm": 2,
    "wm": 3,
    "deep_gm": 4,
    "wmh": 5,
    "stroke": 6,
    "gliosis": 6,
    "sinus": 7,
    "pial": 8,
    "bone": 9,
    "fat": 10,
    "muscle": 11,
    "eye": 12,
}
#: Classes inside the intracranial volume (the ground-truth brain mask, what brain extraction should keep).
INTRACRANIAL = ("csf", "gm", "wm", "deep_gm", "wmh", "stroke", "gliosis", "sinus", "pial")
#: Human-readable names for the dseg lookup table.
DESCRIPTIONS: dict[str, str] = {
    "background": "air outside the head",
    "csf": "cerebrospinal fluid (ventricles, sulci, extracerebral space)",
    "gm": "cortical and cerebellar grey matter",
    "wm": "normal-appearing white matter",
    "deep_gm": "deep grey matter (basal ganglia, thalami)",
    "wmh": "white-matter hyperintensity",
    "stroke": "chronic cortical infarct (cavitated core and gliotic rim)",
    "gliosis": "gliotic rim of the infarct (labelled as stroke)",
    "sinus": "venous sinus (superior sagittal, transverse)",
    "pial": "pial layer / CSF-parenchyma partial volume / interstitial fluid",
    "bone": "skull inner and outer tables",
    "fat": "diploe marrow, subcutaneous and orbital fat",
    "muscle": "scalp muscle, skin and neck soft tissue",
    "eye": "vitreous humour of the eyes",
}


@dataclass(frozen=True)
class Tissue:
    """Relaxation times (ms) at 1.5 T and 3 T and proton density of one tissue."""

    t1_15: float
    t1_3: float
    t2_15: float
    t2_3: float
    pd: float
    flow_void: float = 1.0  # signal factor in spin-echo sequences (moving blood leaves the slice)

    def t1(self, field: float) -> float:
        """T1 at ``field`` tesla, linear in B0 between the two tabulated fields."""
        return float(np.interp(field, [1.5, 3.0], [self.t1_15, self.t1_3]))

    def t2(self, field: float) -> float:
        """T2 at ``field`` tesla."""
        return float(np.interp(field, [1.5, 3.0], [self.t2_15, self.t2_3]))


TISSUES: dict[str, Tissue] = {
    "background": Tissue(1000, 1000, 50, 50, 0.0),
    "csf": Tissue(4000, 4200, 2000, 1800, 1.00),
    "gm": Tissue(1200, 1400, 100, 100, 0.80),
    "wm": Tissue(650, 850, 80, 70, 0.70),
    "deep_gm": Tissue(1000, 1200, 85, 75, 0.78),
    "wmh": Tissue(950, 1250, 140, 130, 0.80),
    "stroke": Tissue(3000, 3300, 1200, 1100, 0.95),
    "gliosis": Tissue(950, 1250, 140, 130, 0.80),
    "sinus": Tissue(1350, 1650, 150, 60, 0.85, flow_void=0.25),
    "pial": Tissue(2000, 2200, 400, 400, 0.90),
    "bone": Tissue(500, 600, 2, 2, 0.05),
    "fat": Tissue(260, 370, 150, 130, 0.90),  # apparent T2 of fat in fast spin echo (J-coupling)
    "muscle": Tissue(1000, 1400, 40, 35, 0.70),
    "eye": Tissue(4000, 4200, 1500, 1300, 1.00),
}


def signal(tissue: Tissue, field: float, seq: dict) -> float:
    """Steady-state magnitude signal of ``tissue`` for the sequence parameters ``seq``.

    ``se``: PD (1 - e^{-TR/T1}) e^{-TE/T2}; ``ir``: PD |1 - 2 e^{-TI/T1} + e^{-TR/T1}| e^{-TE/T2};
    ``gre``: spoiled gradient echo PD sin(a) (1 - E1) / (1 - cos(a) E1) e^{-TE/T2}, E1 = e^{-TR/T1}.
    """
    t1, t2 = tissue.t1(field), tissue.t2(field)
    tr, te = float(seq["TR"]), float(seq["TE"])
    kind = seq["type"]
    if kind == "se":
        s = tissue.pd * (1 - np.exp(-tr / t1)) * np.exp(-te / t2) * tissue.flow_void
    elif kind == "ir":
        ti = float(seq["TI"])
        s = tissue.pd * abs(1 - 2 * np.exp(-ti / t1) + np.exp(-tr / t1)) * np.exp(-te / t2) * tissue.flow_void
    elif kind == "gre":
        a = np.deg2rad(float(seq.get("flip_deg", 10)))
        e1 = np.exp(-tr / t1)
        s = tissue.pd * np.sin(a) * (1 - e1) / (1 - np.cos(a) * e1) * np.exp(-te / t2)
        s /= np.sin(a)  # report in units comparable to the spin-echo equations
    else:
        raise ValueError(f"unknown sequence type {kind!r} (expected se, ir or gre)")
    return float(s)


def signal_table(field: float, seq: dict) -> dict[str, float]:
    """Signal of every tissue class for one sequence at ``field`` tesla."""
    return {name: signal(t, field, seq) for name, t in TISSUES.items()}
