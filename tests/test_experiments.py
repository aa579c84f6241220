"""Every experiment script runs in a tiny configuration and writes its run folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnjax as rj


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNJAX_RUNS", str(tmp_path))
    return tmp_path


def test_adding_problem_tiny(runs, load_script):
    mod = load_script("experiments", "adding_problem")
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


def test_adding_problem_cli_parses_the_config(load_script):
    mod = load_script("experiments", "adding_problem")

    cfg = rj.experiment.parse_config(mod.Config, ["--length", "50", "--cells", "lstm", "gru", "--tbptt", "10",
                                                  "--no-progress"])  # fmt: skip
    assert (cfg.length, cfg.cells, cfg.tbptt, cfg.progress) == (50, ("lstm", "gru"), 10, False)
    assert rj.experiment.parse_config(mod.Config, ["--tbptt", "none"]).tbptt is None


def test_gradient_flow_tiny(runs, load_script):
    mod = load_script("experiments", "gradient_flow")
    cfg = mod.Config(
        hidden_size=6, length=10, batch=2, gains=(0.5, 2.0), lags=(1, 5, 10), lyapunov_steps=20, lyapunov_warmup=5,
        train_length=6, train_steps=4, batch_size=4, snapshots=2, cliff_grid=9, progress=False, name="gf",
    )  # fmt: skip
    out = mod.main(cfg)
    run = runs / "gf"
    for name in ("config.json", "metrics.jsonl", "report.md", "norms_at_init.png", "norms_trained.png",
                 "lyapunov_vs_gain.png", "rate_vs_gain.png", "norm_matrix.png", "singular_values_trained.png",
                 "gradient_reach.png", "lstm_gates.png", "cliff.png"):  # fmt: skip
        assert (run / name).stat().st_size > 0, name
    report = (run / "report.md").read_text()
    for cell in cfg.cells:
        assert f"| {cell} |" in report
    assert "bound" in out["tables"]["init"] and "largest Lyapunov" in out["tables"]["init"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == len(cfg.cells) * (len(cfg.gains) + 1)
    # Pascanu's bound holds for the tanh RNN at every lag, at every gain.
    for gain, m in out["sweep"]["rnn"].items():
        assert (np.asarray(m["norms"]) <= m["bound"] * (1 + 1e-4)).all(), gain
