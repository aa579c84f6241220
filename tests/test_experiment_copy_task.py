"""experiments/copy_task.py in its tiny configuration: the run folder, the table, the Classic rows, load_run."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

import rnnjax as rj
from rnnjax.data.copy_task import copy_baseline, copy_task

TINY_MODELS = ("lstm_fb1", "indrnn")
LENGTHS = (100, 200)


def _losses(metrics, name: str) -> list[float]:
    return [r["loss"] for r in map(json.loads, metrics.read_text().splitlines()) if r["model"] == name]


def test_tiny_run(load_script, tmp_path):
    mod = load_script("experiments", "copy_task")
    assert mod.Config.lengths == LENGTHS and mod.Config.models == mod.MODELS and mod.TINY_MODELS == TINY_MODELS
    out = mod.main(mod.Config(tiny=True, progress=False, root=str(tmp_path)))
    run_dir = tmp_path / "copy_task"
    assert out["run_dir"] == run_dir
    names = {f"T{t}/{m}" for t in LENGTHS for m in TINY_MODELS}

    # The run folder: figures linked from the report, every model's steps in one log.
    report = (run_dir / "report.md").read_text()
    for figure in ("sweep", "loss_T100", "loss_T200"):
        assert (run_dir / f"{figure}.png").stat().st_size > 0 and f"]({figure}.png)" in report
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["model"] for r in records} == names
    for name in names:  # tiny: 4 steps a model
        assert [r["step"] for r in records if r["model"] == name] == [1, 2, 3, 4], name

    # The table: one row per model and delay, the ratio to the baseline as its columns say.
    table = rj.experiment.tables_in(report)[1]  # after the Classic results
    header, _, *lines = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()]
    assert header[:6] == ["model", "T", "final eval CE", "baseline", "CE / baseline", "recall accuracy"]
    cells = {(row[0], int(row[1])): dict(zip(header, row, strict=True)) for row in lines}
    assert set(cells) == {(m, t) for m in TINY_MODELS for t in LENGTHS}
    rows = {(r["model"], r["T"]): r for r in out["results"]}
    for (m, t), r in rows.items():
        assert r["baseline"] == pytest.approx(10 * np.log(8) / (t + 20))
        assert r["ratio"] == pytest.approx(r["cross_entropy"] / r["baseline"])
        assert float(cells[m, t]["final eval CE"]) == pytest.approx(r["cross_entropy"], rel=1e-3)
        assert 0.0 <= r["recall_accuracy"] <= 1.0 and cells[m, t]["steps"] == "4"
        # 4 steps from the start (about log 9 = 2.2 nats per step): still far above the baseline
        assert r["ratio"] > 3.0 and r["cross_entropy"] < 3.5 and r["first_below"] is None

    # The Classic rows: the paper's findings beside ours, the verdicts from our numbers.
    classics = rj.experiment.classics_in(report)
    assert [c["source"] for c in classics] == ["Arjovsky, Shah & Bengio 2016, sec. 4.1, fig. 1"] * 3
    lstm, long, unitary = classics
    assert (
        "T = 100" in lstm["result"]
        and f"lstm_fb1 at T = 100: {rows['lstm_fb1', 100]['cross_entropy']:.4f}" in lstm["ours"]
    )
    assert lstm["agrees"] == "partly" and "4 steps" in lstm["note"]  # ours has not left the start yet
    r = rows["lstm_fb1", 200]
    expected = f"lstm_fb1 at T = 200: {r['cross_entropy']:.4f} ({r['ratio']:.2f} x baseline), recall "
    assert long["ours"] == expected + f"{r['recall_accuracy']:.2f}" and long["agrees"] == "partly"
    assert "uRNN" in unitary["result"] and unitary["agrees"] == "no" and "indrnn" in unitary["ours"]

    for t in LENGTHS:  # the verdict lines name every model, from the table's ratios
        ratios = sorted((r["ratio"], m) for (m, tt), r in rows.items() if tt == t)
        assert f"- T = {t}, final CE / baseline: above it: " + ", ".join(f"{m} ({q:.2f})" for q, m in ratios) in report

    # Every model's folder is a run that rj.runs.load_run rebuilds: its params give the reported final CE.
    for t in LENGTHS:
        xs, ys = copy_task(np.random.default_rng([0, t, 2**31]), 16, t, one_hot=True)
        for m in TINY_MODELS:
            run = rj.runs.load_run(run_dir / f"T{t}" / m)
            assert run.step == 4 and run.config["steps"] == 4
            np.testing.assert_array_equal(run.probe["xs"], xs[:8])
            logits = run.model.apply(run.params, xs)
            assert logits.shape == (16, t + 20, 9)
            ce = float(rj.losses.cross_entropy(logits, ys))
            assert ce == pytest.approx(rows[m, t]["cross_entropy"], rel=1e-5), (m, t)

    # Seeds follow names: the IndRNN trained alone at T = 100 logs the same losses as beside the others.
    solo = tmp_path / "solo"
    mod.main(mod.Config(tiny=True, progress=False, root=str(solo), lengths=(100,), models=("indrnn",)))
    alone = _losses(solo / "copy_task" / "metrics.jsonl", "T100/indrnn")
    assert len(alone) == 4
    np.testing.assert_allclose(alone, _losses(run_dir / "metrics.jsonl", "T100/indrnn"), rtol=1e-6)


def test_cells_have_their_published_defaults(load_script):
    """The LSTM three ways, chrono and the IndRNN set for the whole sequence (T + 20), the rest as
    rj.cells.make builds them; a wrong name fails before anything trains."""
    mod = load_script("experiments", "copy_task")
    cfg = mod.Config(hidden_size=16)
    opts = {m: dict(mod.make_cell(cfg, m, 100).options) for m in ("lstm_fb0", "lstm_fb1", "lstm_chrono", "indrnn")}
    assert (opts["lstm_fb0"]["forget_bias"], opts["lstm_fb0"]["chrono"]) == (0.0, None)
    assert (opts["lstm_fb1"]["forget_bias"], opts["lstm_fb1"]["chrono"]) == (1.0, None)
    assert opts["lstm_chrono"]["chrono"] == 120
    assert (opts["indrnn"]["t_max"], opts["indrnn"]["long_memory"], opts["indrnn"]["activation"]) == (120, True, "relu")
    b = mod.make_cell(cfg, "lstm_chrono", 100).init(jax.random.key(0), 10).b
    b_f, b_i = np.asarray(b[:16]), np.asarray(b[16:32])
    assert 0.0 <= b_f.min() and b_f.max() <= np.log(119) and np.allclose(b_i, -b_f)
    for m in ("rnn", "irnn", "gru", "ln_lstm", "lru", "mingru", "minlstm"):
        assert mod.make_cell(cfg, m, 100) is rj.cells.make(m, 16)
    assert set(mod.MODELS) - {"lstm_fb0", "lstm_fb1", "lstm_chrono"} | {"lstm"} == set(rj.cells.CELLS)
    for bad in ("lstm", "uRNN"):
        with pytest.raises(ValueError, match="models: expected names among"):
            mod.main(mod.Config(models=(bad,), progress=False, root="/nonexistent"))


def test_recall_accuracy_reads_the_last_ten_steps(load_script):
    mod = load_script("experiments", "copy_task")
    _, ys = copy_task(np.random.default_rng(0), 4, 5)
    logits = np.full((4, 25, 9), -5.0, np.float32)
    logits[np.arange(4)[:, None], np.arange(25), ys] = 5.0  # right everywhere ...
    logits[:, -10:-7] = 0.0
    logits[:, -10:-7, 0] = 5.0  # ... but blank at 3 of the 10 recalled steps
    logits[:, :5] = 0.0  # errors outside the recall do not count
    assert float(mod.recall_accuracy(logits, ys)) == pytest.approx(0.7)
    assert copy_baseline(5) == pytest.approx(10 * np.log(8) / 25)
