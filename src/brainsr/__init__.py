"""brainsr: deep attention super-resolution of clinical brain MRI as a Snakemake workflow.

Reproduces Li, Castorina, Valdés Hernández et al., "Deep attention super-resolution of brain MRI acquired
under clinical protocols", Front. Comput. Neurosci. 2022.
"""

__version__ = "0.1.0"

#: Name of the template space used in BIDS-derivatives file names.
TEMPLATE_SPACE = "MNI152NLin2009cSym"
#: The three sequences of a session, in channel order.
SEQUENCES: tuple[str, ...] = ("T1w", "T2w", "FLAIR")
#: Name of the synthetic cohort's ground-truth derivatives dataset (``derivatives/<GT_NAME>``).
GT_NAME = "groundtruth"
#: Slicing axis name -> voxel axis of the (RAS) template grid.
AXES: dict[str, int] = {"sagittal": 0, "coronal": 1, "axial": 2}
