# brainsr: deep attention super-resolution of clinical brain MRI (Li, Castorina, Valdes Hernandez et al. 2022)
# as a Snakemake workflow.  Run:  snakemake --cores all   (see README.md)
from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/qc.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/superres.smk"
include: "workflow/rules/common_evaluate.smk"
include: "workflow/rules/evaluate.smk"


# Small gathering steps run in the main Snakemake process, not as cluster jobs (on SLURM: no queueing for
# seconds of work): the target, dataset descriptions, the BIDS inventory and the group tables. Each such rule
# says so itself with `localrule: True` (the one mechanism used for local rules in this workflow).
rule all:
    input:
        L.all_targets(),
        L.all_sr_targets(),
        L.all_eval_targets(),
    default_target: True
    localrule: True
