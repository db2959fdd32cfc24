"""`snakemake --report report.html` after a smoke run: every figure and table is in it, grouped by stage, each
with a caption naming what it shows, its rule and its config; the captions' README verdicts are the README's."""

import re

import pytest
from snakemake_runs import REPO, SMOKE, snakemake

CAPTIONS = REPO / "workflow" / "report"


def _words(text: str) -> str:
    """Text without markup (markdown/rst emphasis and literals) and with single spaces."""
    return " ".join(re.sub(r"[*`]", "", text).split())


def test_every_readme_verdict_in_a_caption_is_the_readmes_word_for_word():
    readme = _words((REPO / "README.md").read_text())
    blocks = [(p.name, b) for p in sorted(CAPTIONS.glob("*.rst"))
              for b in re.findall(r"\.\. begin README verdict\n(.*?)\.\. end README verdict", p.read_text(), re.S)]
    assert len(blocks) >= 1, blocks  # theory (the unlearning verdicts are generated: tab10, verdict.md)
    stale = [name for name, block in blocks if _words(block) not in readme]
    assert not stale, f"captions whose verdict is no longer the README's: {stale}"


@pytest.mark.slow
def test_report_holds_every_figure_and_table_with_its_caption(smoke_run, tmp_path):
    work, out = smoke_run
    assert out.returncode == 0, out.stderr[-3000:]
    report = work / "report.html"
    built = snakemake(work, "--report", str(report), config=SMOKE, cores=None)
    assert built.returncode == 0, built.stderr[-3000:]
    html = report.read_text()
    figures = sorted(p.name for p in (work / "figures").glob("*.png"))
    tables = sorted(p.name for p in (work / "paper_tables").glob("*.html"))
    # the smoke tier runs every stage, the LLM attacks included: fig1..fig14
    assert sorted(int(re.match(r"fig(\d+)_", f).group(1)) for f in figures) == list(range(1, 15)), figures
    assert len(tables) >= 12, tables
    missing = [name for name in figures + tables + ["provenance.json"] if name not in html]
    assert not missing, missing
    for category in ["1. Theory", "2. Vision", "3. LLM", "4. OFMU sensitivity (both stages)", "5. First-order fidelity",
                     "6. Provenance"]:
        assert category in html, category
    # captions are rendered with the run's config and rule (the smoke tier: no default-tier verdict)
    for phrase in ["Theory claim <strong>C4</strong>", "rule <tt class=\\\"docutils literal\\\">vision_table</tt>",
                   "tier <tt class=\\\"docutils literal\\\">smoke</tt>", "OFMU reproducible artifact: smoke tier"]:
        assert phrase in html, phrase
    assert "README verdict" not in html
