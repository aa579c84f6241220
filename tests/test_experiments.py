"""Every experiment script runs in a tiny configuration and writes its run folder."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"experiments.{name}", ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNJAX_RUNS", str(tmp_path))
    return tmp_path


def test_adding_problem_tiny(runs):
    mod = load("adding_problem")
    tiny = dict(length=10, hidden_size=8, batch_size=8, steps=4, eval_size=16, eval_every=2, progress=False)
    out = mod.main(mod.Config(**tiny, name="tiny"))
    run = runs / "tiny"
    assert out["run_dir"] == run
    for name in ("config.json", "metrics.jsonl", "loss_curves.png", "report.md"):
        assert (run / name).stat().st_size > 0, name
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {r["cell"] for r in records} == {"rnn", "irnn", "lstm", "gru"}
    assert len(records) == 4 * 4
    report = (run / "report.md").read_text()
    assert "0.1667" in report and "| lstm |" in report and "git_commit" in report
    assert json.loads((run / "config.json").read_text())["config"]["length"] == 10

    # Truncated BPTT with k = T is full BPTT: the same losses step by step.
    mod.main(mod.Config(**tiny, cells=("lstm",), tbptt=10, name="tiny_k"))
    full = [r["loss"] for r in records if r["cell"] == "lstm"]
    trunc = [json.loads(line)["loss"] for line in (runs / "tiny_k" / "metrics.jsonl").read_text().splitlines()]
    assert trunc == pytest.approx(full, rel=1e-5)


def test_adding_problem_cli_parses_the_config():
    mod = load("adding_problem")
    import rnnjax as rj

    cfg = rj.experiment.parse_config(mod.Config, ["--length", "50", "--cells", "lstm", "gru", "--tbptt", "10",
                                                  "--no-progress"])  # fmt: skip
    assert (cfg.length, cfg.cells, cfg.tbptt, cfg.progress) == (50, ("lstm", "gru"), 10, False)
    assert rj.experiment.parse_config(mod.Config, ["--tbptt", "none"]).tbptt is None
