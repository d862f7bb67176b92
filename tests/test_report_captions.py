"""The HTML report's text as Snakemake renders it: every caption and the landing page with the hyperlink targets
Snakemake appends to them, without a single docutils warning or error, and category names that make valid targets.

The captions, categories and files come from the workflow itself (loaded with the tiny preset, nothing run), the
appended targets from the installed Snakemake's report code, so a new report() call or caption is checked too."""

from __future__ import annotations

import inspect
import io
import re
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from conftest import REPO, TINY
from docutils.core import publish_parts
from jinja2 import Environment

from brainsr.report.provenance import NO_GIT, run_facts, source_commit, split_counts

# values of the wildcards in report() arguments and output paths (as in a run of the tiny preset)
SAMPLE_WILDCARDS = {"subject": "P001", "session": "clinical"}
# characters that end or change an explicit target name (.. _name: uri), or break the javascript: link Snakemake
# gives it (the browser percent-decodes the link, so a quote would end the category's string literal)
BAD_NAME_CHARS = {":": "colon", "`": "backquote", "'": "quote", '"': "double quote", "\\": "backslash", "\n": "newline"}


@dataclass(frozen=True)
class ReportEntry:
    """One output marked for the report: its rule, file (wildcards filled), caption file and grouping."""

    rule: str
    path: str
    caption: Path | None
    category: str | None
    subcategory: str | None


@dataclass(frozen=True)
class LoadedWorkflow:
    """What a report of the workflow is built from: its report entries, landing page and final config."""

    entries: list[ReportEntry]
    landing: Path
    config: dict[str, Any]


def _fill(text: str | None) -> str | None:
    """*text* with its {wildcard} patterns replaced by the sample values."""
    if text is None:
        return None
    return re.sub(r"\{(\w+)[^}]*\}", lambda m: SAMPLE_WILDCARDS.get(m.group(1), "x"), text)


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> LoadedWorkflow:
    """The workflow parsed with the tiny preset in an empty directory, through Snakemake's API (nothing runs)."""
    from snakemake.api import SnakemakeApi
    from snakemake.io import get_flag_value, is_flagged
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings()) as api:
        wf = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=[TINY]),
            snakefile=REPO / "Snakefile",
            workdir=tmp_path_factory.mktemp("report_captions"),
        )._workflow
        entries = []
        for rule in wf.rules:
            for out in rule.output:
                if is_flagged(out, "report"):
                    obj = get_flag_value(out, "report")
                    caption = Path(obj.caption.get_path_or_uri(secret_free=True)) if obj.caption else None
                    entries.append(ReportEntry(rule.name, _fill(str(out)), caption, obj.category, obj.subcategory))
        return LoadedWorkflow(entries, Path(wf.report_text.get_path_or_uri(secret_free=True)), dict(wf.config))


def snakemake_target_lines() -> str:
    """The reST template Snakemake (snakemake.report.auto_report) appends to every caption and the landing page:
    targets of the Workflow and Statistics panels, of every category and of every file."""
    import snakemake.report

    source = inspect.getsource(snakemake.report.auto_report)
    match = re.search(r'rst_links = textwrap\.dedent\(\s*"""(.*?)"""', source, re.DOTALL)
    assert match, "snakemake.report.auto_report no longer defines rst_links: update this test to the new report code"
    return textwrap.dedent(match.group(1))


def render(text: str, wf: LoadedWorkflow, config: dict[str, Any] | None = None) -> tuple[str, str]:
    """(HTML body, docutils messages) of a caption or landing page rendered the way `snakemake --report` does."""
    from snakemake.report import Category

    categories: dict[Category, dict] = {Category(name=e.category): {} for e in wf.entries}
    files = {Path(e.path).name: SimpleNamespace(target=Path(e.path).name, path=Path(e.path)) for e in wf.entries}
    snakemake = SimpleNamespace(config=config or wf.config, wildcards=SAMPLE_WILDCARDS)
    rst = (
        Environment(trim_blocks=True, lstrip_blocks=True)
        .from_string(text + snakemake_target_lines())
        .render(snakemake=snakemake, categories=categories, files=list(files.values()))
    )
    stream = io.StringIO()
    parts = publish_parts(rst, writer="html", settings_overrides={"warning_stream": stream})
    return parts["html_body"], stream.getvalue()


def test_snakemake_appends_a_target_per_category():
    """The template this module checks against still names every category (else the checks below are void)."""
    lines = snakemake_target_lines()
    assert ".. _{{ cat.name }}:" in lines and ".. _{{ res.target }}:" in lines


def test_every_caption_renders_without_a_docutils_message(workflow):
    assert len({e.caption for e in workflow.entries}) >= 15, workflow.entries
    problems = {}
    for entry in workflow.entries:
        assert entry.caption is not None, f"{entry.rule}: {entry.path} has no caption"
        html, messages = render(entry.caption.read_text(), workflow)
        if messages or "System Message" in html:
            problems[f"{entry.caption.name} ({entry.category})"] = messages
    assert not problems, "\n".join(f"{name}:\n{text}" for name, text in problems.items())


@pytest.mark.parametrize("bids_dir", ["", "/data/my_study_/bids"])
def test_landing_page_renders_without_a_docutils_message(workflow, bids_dir):
    config = {**workflow.config, "bids_dir": bids_dir}
    html, messages = render(workflow.landing.read_text(), workflow, config)
    assert not messages and "System Message" not in html, messages


def test_category_names_make_valid_distinct_targets(workflow):
    """No character that ends a target name or breaks its link; no two names that docutils takes for one."""
    names = ({e.category for e in workflow.entries} | {e.subcategory for e in workflow.entries}) - {None}
    for name in names:
        assert name == name.strip() and not name.startswith("_"), repr(name)
        bad = [what for char, what in BAD_NAME_CHARS.items() if char in name]
        assert not bad, f"{name!r} holds a {', '.join(bad)}"
    # docutils compares target names case-folded with whitespace collapsed; Snakemake adds Workflow, Statistics
    # and every file name to the categories
    targets = ["Workflow", "Statistics", *{e.category for e in workflow.entries}]
    targets += sorted({Path(e.path).name for e in workflow.entries})
    normalised = [" ".join(t.lower().split()) for t in targets]
    assert len(set(normalised)) == len(normalised), sorted(normalised)


def test_landing_page_states_the_run_and_links_to_the_claims(workflow):
    """The first page a reader sees: the config files, the cohort, the commit and a link to the claims table."""
    html, _ = render(workflow.landing.read_text(), workflow)
    findings = next(e for e in workflow.entries if Path(e.path).stem == "evaluation_findings")
    assert f"javascript:app.showCategory('{quote(findings.category)}')" in html
    text = " ".join(re.sub(r"<[^>]+>", "", html).split())
    assert "config.yaml" in text and TINY.name in text
    assert "3 patients" in text and "1 control" in text
    assert re.search(r"commit [0-9a-f]{7,}|not a git checkout", text), text


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_source_commit_of_a_checkout_a_changed_checkout_and_no_checkout(tmp_path):
    repo, plain = tmp_path / "repo", tmp_path / "plain"
    plain.mkdir()
    assert source_commit(plain) == NO_GIT
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "a.txt").write_text("a\n")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    (repo / "sub").mkdir()
    (repo / "untracked.txt").write_text("not a change of the commit's files\n")
    assert source_commit(repo / "sub") == head[:12]
    (repo / "a.txt").write_text("b\n")
    assert source_commit(repo) == f"{head[:12]} with uncommitted changes"


def test_run_facts_for_the_landing_page(tmp_path):
    facts = run_facts(
        ["config.yaml", tmp_path / "preset.yaml"],
        {"output_dir": "out", "evaluate": {"splits": ["test"]}},
        tmp_path,
        {"P001": "test", "P002": "train", "P003": "extra", "P004": None, "P005": "train"},
        ["C001"],
        ["P001"],
        ("P001", "model0"),
    )
    assert facts["config_files"] == [str(Path("config.yaml").absolute()), str(tmp_path / "preset.yaml")]
    assert facts["overrides"] == ['evaluate={"splits": ["test"]}', 'output_dir="out"']
    assert facts["patients"] == 5 and facts["controls"] == 1
    assert facts["splits"] == "2 train, 1 test, 1 extra, 1 unassigned"
    assert facts["showcase"] == ["P001", "model0"] and facts["evaluated"] == ["P001"]
    assert split_counts({}) == ""
