# Evaluation and report (paper 3.8, 4.2-4.9): what evaluate.smk needs beyond the layout L: the report's captions
# and categories (Snakemake's report()), and the facts of the run for the report's landing page.

from brainsr.report.provenance import run_facts
from brainsr.workflow.layout import GROUP_TABLES, truth_args

_CAPTIONS = "../report"  # captions of the HTML report, relative to workflow/rules
_SCAN = dict(subject=r"[A-Za-z0-9]+", desc=r"[A-Za-z0-9]+")
_WC = dict(subject="{subject}", session="{session}", desc="{desc}")


def scan_set_inputs(subject, session, desc):
    """L.scan_set_inputs, the ground truth's label table marked ancient (rewritten, unchanged, as the cohort grows)."""
    files = L.scan_set_inputs(subject, session, desc)
    if "lookup" in files:
        files["lookup"] = ancient(files["lookup"])
    return files


def _report(key, caption, category, subcategory=None):
    """A table page (<key>_html) or figure (<key>_png) marked for `snakemake --report`, captioned and grouped by
    paper section."""
    path = L.report_table_file(key[:-5]) if key.endswith("_html") else L.figure_file(key[:-4])
    return report(path, caption=f"{_CAPTIONS}/{caption}.rst", category=category, subcategory=subcategory)


# Report categories are paper sections. Snakemake turns each category name into a reStructuredText target
# (".. _<name>:") under every caption: no colon, quote or backquote in them (tests/test_report_captions.py).
BEST_MODEL = "4.1-4.5 Experiments and the best model"
CLAIMS = "Claims of the paper checked on this run"  # linked by name from workflow/report/workflow.rst
SEGMENTATION = "4.9.2 Segmentation in the test set"
LONGITUDINAL = "4.9.3 Longitudinal variability (controls)"

_SUBJECT_CAPTIONS = {
    "fig05": (BEST_MODEL, "Fig. 5 (axial)"),
    "fig06": (BEST_MODEL, "Fig. 6 (coronal)"),
    "fig07": (BEST_MODEL, "Fig. 7 (differences)"),
    "fig08": ("4.7 Attention gates", "Fig. 8 (attention gates)"),
    "fig09": ("4.8 Grad-CAM of the critic", "Fig. 9 (Grad-CAM)"),
    "fig11": (SEGMENTATION, "Fig. 11 (classes)"),
    "fig12": (SEGMENTATION, "Fig. 12 (WMH)"),
}


# What this run was, for the report's landing page (workflow/report/workflow.rst reads config["_run"]).
config["_run"] = run_facts(
    [_base_config, *workflow.configfiles],
    workflow.config_settings.config,
    workflow.basedir,
    {p: L.split.get(p) for p in L.patients},
    L.controls,
    L.sr_subjects,
    (L.showcase_subject, L.showcase) if L.showcased else None,
)
