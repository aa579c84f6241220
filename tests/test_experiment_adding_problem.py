"""experiments/adding_problem.py: the sweep over T in its tiny configuration, its tables, Classic rows and run
folders, truncated BPTT, and the baseline's threshold."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import rnnjax as rj
from rnnjax.data.synthetic import ADDING_BASELINE_MSE, adding_problem


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNJAX_RUNS", str(tmp_path))
    return tmp_path


@pytest.fixture
def mod(load_script):
    return load_script("experiments", "adding_problem")


def _sections(report: str) -> dict[str, str]:
    """``{"T = 10": text under "### T = 10", ...}``."""
    parts = report.split("\n### ")[1:]
    return {p.split("\n", 1)[0]: p.split("\n", 1)[1].split("\n## ")[0] for p in parts}


def test_adding_problem_tiny(runs, mod):
    out = mod.main(mod.Config(tiny=True, progress=False, name="tiny"))
    cfg = mod.dataclasses.replace(mod.Config(), **mod.TINY)
    run = runs / "tiny"
    assert out["run_dir"] == run and cfg.lengths == (10, 100)
    names = ["config.json", "metrics.jsonl", "report.md", "sweep.png", "loss_curves_T10.png", "loss_curves_T100.png"]
    for name in names:
        assert (run / name).stat().st_size > 0, name
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {(r["cell"], r["T"]) for r in records} == {(c, t) for c in cfg.cells for t in cfg.lengths}
    assert len(records) == len(cfg.cells) * len(cfg.lengths) * 4

    report = (run / "report.md").read_text()
    assert "0.1667" in report and "git_commit" in report
    env, config = rj.experiment.report_facts(report)
    assert float(env["wall_time_s"]) > 0 and config["lengths"] == [10, 100] and config["tiny"]
    results = {(r["cell"], r["T"]): r for r in out["results"]}
    # The sweep table: a row per cell, a column per T (the final MSE), the longest T below the baseline.
    sweep = rj.experiment.table_cells(out["tables"]["sweep"])
    assert out["tables"]["sweep"] in report and list(sweep) == list(cfg.cells)
    threshold = mod.baseline_threshold(cfg.eval_size)
    for cell, row in sweep.items():
        for t in cfg.lengths:
            assert float(row[f"T = {t}"]) == pytest.approx(results[cell, t]["final_mse"], rel=1e-3)
        below = [t for t in cfg.lengths if results[cell, t]["final_mse"] < threshold]
        assert row["longest T below the baseline"] == (str(max(below)) if below else "none")
    # One detail table per T, under its heading, with today's columns.
    sections = _sections(report)
    assert list(sections) == ["T = 10", "T = 100"]
    for t in cfg.lengths:
        (table,) = rj.experiment.tables_in(sections[f"T = {t}"])
        assert table.splitlines()[0] == "| " + " | ".join(mod.DETAIL_COLUMNS) + " |"
        detail = rj.experiment.table_cells(table)
        assert list(detail) == list(cfg.cells)
        assert float(detail["lstm"]["final eval MSE"]) == pytest.approx(results["lstm", t]["final_mse"], rel=1e-3)
        assert f"![loss curves, T = {t}](loss_curves_T{t}.png)" in sections[f"T = {t}"]
    # The Classic rows: Le et al. (IRNN and LSTM; the tanh RNN) and Hochreiter & Schmidhuber (LSTM at T = 100).
    classics = rj.experiment.classics_in(report)
    assert [c["source"].split(",")[0] for c in classics] == ["Le", "Le", "Hochreiter & Schmidhuber 1997"]
    assert all(c["agrees"] in ("yes", "partly", "no") for c in classics)
    assert f"{results['irnn', 100]['final_mse']:.3g}" in classics[0]["ours"]
    assert f"{results['rnn', 10]['final_mse']:.3g}" in classics[1]["ours"]
    assert "74,000" in classics[2]["published"] and f"{results['lstm', 100]['final_mse']:.3g}" in classics[2]["ours"]

    # Every model's folder reads back whole; the restored LSTM scores its logged final MSE on the eval set.
    assert [p.name for p in rj.runs.find_runs(run)] == sorted(f"{c}_T{t}" for c in cfg.cells for t in cfg.lengths)
    loaded = rj.runs.load_run(run / "lstm_T100")
    xs, ys = adding_problem(np.random.default_rng([cfg.seed, 2**31, 100]), cfg.eval_size, 100)
    np.testing.assert_array_equal(loaded.probe["xs"], xs[:8])
    assert loaded.step == 4 and loaded.model.apply(loaded.params, **loaded.probe).shape == (8, 1)
    mse = float(rj.losses.mse(loaded.model.apply(loaded.params, xs), ys))
    assert mse == pytest.approx(results["lstm", 100]["final_mse"], rel=1e-5)

    # Truncated BPTT with k = T is full BPTT: the same losses step by step.
    mod.main(mod.Config(tiny=True, progress=False, cells=("lstm",), tbptt=10, name="tiny_k"))
    trunc = [json.loads(line) for line in (runs / "tiny_k" / "metrics.jsonl").read_text().splitlines()]
    full = [r["loss"] for r in records if (r["cell"], r["T"]) == ("lstm", 10)]
    assert [r["loss"] for r in trunc if r["T"] == 10] == pytest.approx(full, rel=1e-5)


def test_truncated_gradients_are_full_bptt_at_k_equal_t_and_cut_below(mod, getkey):
    """The script's truncated BPTT against jax.grad of the whole sequence's loss: equal at k = T; at k = T / 4 the
    same loss, another gradient (what reaches back past the last chunk is cut)."""
    import jax

    model = rj.models.ManyToOne(rj.RNN(cell=rj.cells.lstm(8, forget_bias=1.0)), output_size=1)
    params = model.init(getkey(), 2)
    batch = adding_problem(np.random.default_rng(0), 16, 40)
    loss, grads = jax.value_and_grad(lambda p: rj.losses.mse(model.apply(p, batch[0]), batch[1]))(params)

    def norm(tree):
        return float(np.sqrt(sum(np.sum(np.square(x)) for x in jax.tree.leaves(tree))))

    for k, same in ((40, True), (10, False)):
        (loss_k, _), grads_k = mod._truncated(model, k)(params, batch, None)
        assert float(loss_k) == pytest.approx(float(loss), rel=1e-5)
        gap = norm(jax.tree.map(lambda a, b: a - b, grads_k, grads)) / norm(grads)
        assert (gap < 1e-5) if same else (gap > 1e-3), (k, gap)


def test_adding_problem_cli_parses_the_config(mod):
    cfg = rj.experiment.parse_config(mod.Config, ["--lengths", "50", "200", "--steps", "300", "100", "--cells", "lstm",
                                                  "gru", "--tbptt", "10", "--no-progress"])  # fmt: skip
    assert (cfg.lengths, cfg.steps, cfg.cells, cfg.tbptt, cfg.progress) == ((50, 200), (300, 100), ("lstm", "gru"),
                                                                            10, False)  # fmt: skip
    assert mod.steps_per_length(cfg) == {50: 300, 200: 100}
    assert mod.steps_per_length(mod.dataclasses.replace(cfg, steps=(7,))) == {50: 7, 200: 7}
    assert rj.experiment.parse_config(mod.Config, ["--tbptt", "None"]).tbptt is None
    rates = rj.experiment.parse_config(mod.Config, ["--learning-rate", "0.01", "--learning-rates", "irnn", "3e-4"])
    assert [mod.learning_rate(rates, c) for c in ("irnn", "lstm")] == [3e-4, 0.01]
    assert mod.learning_rate(mod.Config(), "irnn") == 1e-4 and mod.learning_rate(mod.Config(), "gru") == 3e-3
    with pytest.raises(SystemExit):  # tyro prints what it expected
        rj.experiment.parse_config(mod.Config, ["--tbptt", "ten"])
    with pytest.raises(SystemExit):
        rj.experiment.parse_config(mod.Config, ["--length", "100"])  # the old flag is gone: --lengths


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        (dict(steps=(10, 20)), "steps: expected one number or one per length"),
        (dict(steps=(0,)), "steps: expected positive"),
        (dict(lengths=(100, 100)), "lengths: expected distinct"),
        (dict(lengths=(1,)), "lengths: expected distinct lengths T >= 2"),
        (dict(cells=("lstm", "nope")), "cells: expected distinct names"),
        (dict(learning_rates=(("nope", 1e-3),)), "learning_rates: expected distinct cell names"),
        (dict(learning_rates=(("irnn", 0.0),)), "learning_rates: expected distinct cell names with positive"),
        (dict(learning_rate=-1.0), "learning_rate: expected a positive rate"),
        (dict(lengths=(20, 100), steps=(5,), tbptt=50), r"tbptt: expected None or 1 to the shortest T \(20\)"),
    ],
)
def test_adding_problem_refuses_a_config_it_cannot_run(mod, fields, match):
    with pytest.raises(ValueError, match=match):
        mod.check_config(mod.Config(**fields))


def test_baseline_threshold_is_three_standard_errors_below_one_sixth(mod):
    # The predict-1 squared errors of many sequences: mean 1/6, variance 7/180 (the closed form in the docstring).
    _, ys = adding_problem(np.random.default_rng(0), 400_000, 4)
    errors = (ys[:, 0].astype(np.float64) - 1.0) ** 2
    assert errors.mean() == pytest.approx(ADDING_BASELINE_MSE, abs=2e-3)
    assert errors.var() == pytest.approx(7 / 180, rel=1e-2)
    assert mod.baseline_threshold(1000) == pytest.approx(1 / 6 - 3 * math.sqrt(errors.var() / 1000), abs=1e-4)
    assert mod.baseline_threshold(1000) == pytest.approx(0.1480, abs=1e-4)
    with pytest.raises(ValueError, match="eval_size"):
        mod.baseline_threshold(0)


def test_longest_t_below_the_baseline_reads_every_length(mod):
    """A cell may fail at one T and succeed at a longer one (a run's luck): both columns say what happened."""
    rows = [dict(cell="a", T=t, diverged=None, final_mse=m) for t, m in ((100, 0.01), (200, 0.16), (400, 0.02))]
    rows += [dict(cell="b", T=100, diverged="loss is nan at step 7"), dict(cell="c", T=100, diverged=None,
                                                                       final_mse=0.001)]  # fmt: skip
    assert mod.longest_below(rows, "a", 0.148) == (400, 200)
    assert mod.longest_below(rows, "b", 0.148) == (None, 100)
    assert mod.longest_below(rows, "c", 0.148) == (100, None)
