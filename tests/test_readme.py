"""The README's Python examples run as written, in order, in one namespace."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import rnnjax as rj

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102


def test_readme_quick_start_has_the_main_job_and_the_tests():
    text = README.read_text()
    assert text.count("<!-- test-command -->") == 1 and text.count("<!-- main-command -->") == 1
    main = re.search(r"<!-- main-command -->\n```bash\n(.*)\n```", text).group(1)
    assert main.endswith("experiments/gradient_flow.py"), main
    ci = (README.parent / ".ci" / "run").read_text()
    assert "test-command" in ci


# The README's results: the blocks between <!-- results:<name>:begin/end --> come from docs/results/<name>.md.
RESULTS = README.parent / "docs" / "results"
NAMES = ("gradient_flow", "adding_problem", "rnn_speed", "cell_speed", "jacobian_speed")


def _reproduce():
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("docs.reproduce", README.parent / "docs" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _linked_files(markdown_path: Path, text: str | None = None) -> list[Path]:
    """The local files that a markdown file (or ``text`` of it) links to: images and links, no URLs or anchors."""
    targets = re.findall(r"\]\(([^)\s]+)\)", markdown_path.read_text() if text is None else text)
    return [markdown_path.parent / t for t in targets if not re.match(r"\w+://|#", t)]


def _outside_blocks(text: str) -> list[str]:
    return re.split(r"<!-- results:\w+:begin -->.*?<!-- results:\w+:end -->", text, flags=re.S)


@pytest.mark.parametrize("name", NAMES)
def test_readme_tables_are_the_committed_reports_tables(name):
    block = rj.experiment.block(README.read_text(), name)
    report = (RESULTS / f"{name}.md").read_text()
    tables = rj.experiment.tables_in(block)
    assert tables, name
    for table in tables:
        assert table in rj.experiment.tables_in(report), f"{name}: a README table is not in docs/results/{name}.md"


def test_readme_results_are_what_the_reports_give():
    """Every number of the blocks, prose included: `python docs/reproduce.py --from-reports` changes nothing."""
    reproduce = _reproduce()
    cfg = reproduce.Config(readme=str(README), results_dir=str(RESULTS), figures_dir=str(RESULTS.parent / "figures"))
    for name in (*NAMES, "applications", "classics"):
        assert rj.experiment.block(README.read_text(), name) == reproduce.render(name, cfg).strip("\n"), name


def test_the_applications_table_is_every_applications_headlines():
    reproduce = _reproduce()
    block = rj.experiment.block(README.read_text(), "applications")
    (table,) = rj.experiment.tables_in(block)
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    for name, title in reproduce.APPLICATIONS.items():
        report = (RESULTS / f"{name}.md").read_text()
        heads = rj.experiment.headlines_in(report)
        assert heads, f"docs/results/{name}.md has no Headline table"
        mine = rows[[r[0] for r in rows].index(f"[{title}](docs/results/{name}.md)") :][: len(heads)]
        for row, head in zip(mine, heads, strict=True):
            ours, theirs = f"{head['best model']} {head['score']}", f"{head['best baseline']} {head['baseline score']}"
            assert row[2:7] == [head["task"], head["metric"], ours, theirs, head["beats baseline"]]
        env, config = rj.experiment.report_facts(report)
        assert mine[0][7] == f"{float(env['wall_time_s']):.0f} s" and not config["tiny"], name


def test_the_classics_table_is_every_reports_classic_results():
    reproduce = _reproduce()
    (table,) = rj.experiment.tables_in(rj.experiment.block(README.read_text(), "classics"))
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    block = rj.experiment.block(README.read_text(), "classics")
    for name, (title, _) in reproduce.CLASSICS.items():
        if not (RESULTS / f"{name}.md").exists():  # a run not kept yet is named under the table
            assert f"`python experiments/{name}.py`" in block.split("No kept report yet")[1], name
            continue
        report = (RESULTS / f"{name}.md").read_text()
        classics = rj.experiment.classics_in(report)
        assert classics, f"docs/results/{name}.md has no Classic results table"
        mine = rows[[r[0] for r in rows].index(f"[{title}](docs/results/{name}.md)") :][: len(classics)]
        for row, c in zip(mine, classics, strict=True):
            assert row[1:6] == [c["result"], c["source"], c["published"], c["ours"], c["agrees"]]
        env, config = rj.experiment.report_facts(report)
        assert mine[0][6:] == [f"`python experiments/{name}.py`", f"{float(env['wall_time_s']):.0f} s"], name
        assert not config["tiny"], name


@pytest.mark.parametrize("doc", [README, *sorted(RESULTS.glob("*.md"))], ids=lambda p: p.name)
def test_every_linked_file_exists(doc):
    missing = [str(p.relative_to(README.parent)) for p in _linked_files(doc) if not p.exists()]
    assert not missing, missing


FRESH = ("jacobian_speed", "time_series", "flip_flop")
"""What the tiny reproduce test reruns: one run of each kind of README block (a benchmark's own block, the
applications', the classics'). Every script runs tiny in its own test; rerunning all of them here took 8 of CI's
30 minutes."""


def test_reproduce_tiny_writes_reports_figures_and_the_readme(tmp_path):
    """The whole command into tmp folders and a copy of the README: the runs of FRESH, tiny, beside copies of the
    committed reports of the others; then every block rewritten from those reports."""
    reproduce = _reproduce()
    results, figures = tmp_path / "results", tmp_path / "figures"
    shutil.copytree(RESULTS, results)
    shutil.copytree(README.parent / "docs" / "figures", figures)
    for name in FRESH:
        shutil.rmtree(figures / name, ignore_errors=True)
        (results / f"{name}.md").unlink()
    readme = tmp_path / "README.md"
    readme.write_text(README.read_text())
    before = README.read_text()
    argv = ["--tiny", "--root", str(tmp_path / "runs"), "--results-dir", str(results), "--figures-dir", str(figures),
            "--readme", str(readme)]  # fmt: skip
    reproduce.main(rj.experiment.parse_config(reproduce.Config, [*argv, "--only", *FRESH]))
    assert README.read_text() == before  # the repository's README is left alone
    for name in FRESH:
        env, config = rj.experiment.report_facts((results / f"{name}.md").read_text())
        assert config["tiny"] and float(env["wall_time_s"]) > 0, name
    assert {p.name for p in (figures / "flip_flop").glob("*.png")} == {
        p.name for p in (README.parent / "docs" / "figures" / "flip_flop").glob("*.png")
    }  # the run's figures, kept beside its report
    assert (figures / "time_series" / "forecast_air_passengers.png").exists()
    rewritten = readme.read_text()
    assert "(results/time_series.md)" in rj.experiment.block(rewritten, "applications")
    assert "flip_flop" in rj.experiment.block(rewritten, "classics")

    # Every block, from the reports kept: the fresh ones and the copies.
    everything = rj.experiment.parse_config(reproduce.Config, [*argv, "--from-reports"])
    reproduce.main(everything)
    text = readme.read_text()
    for name in NAMES:
        report = (results / f"{name}.md").read_text()
        env, _ = rj.experiment.report_facts(report)
        block = rj.experiment.block(text, name)
        assert f"{float(env['wall_time_s']):.0f} s on" in " ".join(block.split()), name  # lines wrap anywhere
        for table in rj.experiment.tables_in(block):
            assert table in rj.experiment.tables_in(report), name
    apps = rj.experiment.block(text, "applications")
    for name in reproduce.APPLICATIONS:
        assert f"(results/{name}.md)" in apps and rj.experiment.headlines_in((results / f"{name}.md").read_text()), name
    classics = rj.experiment.block(text, "classics")
    for name in reproduce.CLASSICS:
        assert f"(results/{name}.md)" in classics and rj.experiment.classics_in((results / f"{name}.md").read_text()), (
            name
        )
    blocks = "\n".join(rj.experiment.block(text, name) for name in NAMES)
    linked = [*_linked_files(readme, blocks), *(p for doc in results.glob("*.md") for p in _linked_files(doc))]
    assert len(linked) > 10 and all(p.exists() for p in linked), [str(p) for p in linked if not p.exists()]
    assert _outside_blocks(text) == _outside_blocks(before)  # only the blocks are rewritten

    # A subset, from the kept reports only: nothing reruns and the README is the same.
    reproduce.main(reproduce.dataclasses.replace(everything, only=("jacobian_speed",)))
    assert readme.read_text() == text


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gradient_flow", "adding_problem"])
def test_a_fresh_default_run_reproduces_the_committed_report(name, tmp_path, load_script, monkeypatch):
    """The studies (not the timings) reproduce: a fresh default run's tables are the committed report's,
    character for character (minutes each: ``pytest -m slow``)."""
    monkeypatch.chdir(tmp_path)
    script = load_script("experiments", name)
    script.main(script.Config(root=str(tmp_path), progress=False))
    fresh = rj.experiment.tables_in((tmp_path / name / "report.md").read_text())
    committed = rj.experiment.tables_in((RESULTS / f"{name}.md").read_text())
    # The adding problem's tables end with a column of seconds: a timing, not a result.
    strip = (lambda t: re.sub(r"\| [\d.]+ \|$", "|", t, flags=re.M)) if name == "adding_problem" else (lambda t: t)
    assert [strip(t) for t in fresh] == [strip(t) for t in committed]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(_reproduce().APPLICATIONS))
def test_a_fresh_default_application_run_reproduces_its_headlines(name, tmp_path, load_script, monkeypatch):
    """The applications' verdicts reproduce: a fresh default run's headline rows are the committed report's
    (seconds to minutes each: ``pytest -m slow``)."""
    monkeypatch.chdir(tmp_path)
    script = load_script("experiments", name)
    script.main(script.Config(root=str(tmp_path), progress=False))
    fresh = rj.experiment.headlines_in((tmp_path / name / "report.md").read_text())
    assert fresh == rj.experiment.headlines_in((RESULTS / f"{name}.md").read_text())
