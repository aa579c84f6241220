"""experiments/sequential_images.py in its tiny configuration: the run folder, the headlines, the scores."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rnnjax as rj

CELLS = ("rnn", "lstm", "gru", "mingru", "minlstm", "lru", "indrnn", "ln_lstm")
NAMES = {f"{d}/{m}" for d in ("sklearn", "mnist5k") for m in (*CELLS, "mlp")}
DIVERGED = {"mnist5k/ln_lstm"}  # every MNIST image starts with blank rows: the report's note says why


def _losses(metrics, name: str) -> list[float]:
    return [r["loss"] for r in map(json.loads, metrics.read_text().splitlines()) if r["model"] == name]


def test_tiny_run(load_script, tmp_path):
    mod = load_script("experiments", "sequential_images")
    assert mod.Config.cells == CELLS
    out = mod.main(mod.Config(tiny=True, progress=False, root=str(tmp_path)))
    run_dir = tmp_path / "sequential_images"
    assert out["run_dir"] == run_dir

    # The run folder: figures linked from the report, every model's steps in one log.
    report = (run_dir / "report.md").read_text()
    for figure in ("loss_sklearn", "accuracy_sklearn", "loss_mnist5k", "accuracy_mnist5k", "confusion_mnist5k"):
        assert (run_dir / f"{figure}.png").stat().st_size > 0 and f"]({figure}.png)" in report
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["model"] for r in records} == NAMES
    for name in NAMES - DIVERGED:  # tiny: 6 steps a model, evaluations inside step records
        assert [r["step"] for r in records if r["model"] == name] == list(range(1, 7)), name
    assert [r for r in records if r["model"] in DIVERGED] == [
        {"model": "mnist5k/ln_lstm", "step": 1, "diverged": "grad_norm = inf"}
    ]
    assert json.loads((run_dir / "config.json").read_text())["config"]["max_train"] == 200

    # A diverged model is a row that says so, with its step and why, and takes no part in the headline.
    rows = {(r["dataset"], r["model"]): r for r in out["results"]}
    assert len(rows) == 2 * (len(CELLS) + 2)
    assert {f"{d}/{m}" for (d, m), r in rows.items() if "diverged" in r} == DIVERGED
    assert "| mnist5k | ln_lstm | recurrent (rows) | diverged | diverged |" in out["table"]
    assert "- mnist5k, ln_lstm: training diverged (step 1: grad_norm = inf), so it has no score. " in report
    assert "starts with 1 to 9 blank rows" in report
    assert "alpha / sqrt(eps) = 316 at the published eps = 1e-05" in report

    # The headlines name the best of each side, as the table's numbers say.
    headlines = rj.experiment.headlines_in(report)
    assert [h["task"].split()[0] for h in headlines] == ["sklearn", "mnist5k"]
    for h, data in zip(headlines, ("sklearn", "mnist5k"), strict=True):
        recurrent = {m: rows[data, m]["test_accuracy"] for m in CELLS if f"{data}/{m}" not in DIVERGED}
        pixels = {m: rows[data, m]["test_accuracy"] for m in ("mlp", "logistic regression")}
        assert h["best model"] == max(recurrent, key=recurrent.get)
        assert h["best baseline"] == max(pixels, key=pixels.get)
        assert float(h["score"]) == pytest.approx(max(recurrent.values()), rel=1e-3)
        assert (h["beats baseline"] == "yes") == (max(recurrent.values()) > max(pixels.values()))
        assert (h["note"] == "") == (h["beats baseline"] == "yes")  # a loss is explained
    assert "| sklearn | logistic regression |" in out["table"]

    # Real scores: logistic regression on 200 training images already reads digits far above chance (0.1),
    # unless the pixels, the labels or the split were scrambled.
    for r in rows.values():
        if "diverged" not in r:
            assert 0.0 <= r["test_accuracy"] <= 1.0 and 0.0 <= r["validation_accuracy"] <= 1.0
    assert rows["sklearn", "logistic regression"]["test_accuracy"] > 0.85
    assert rows["mnist5k", "logistic regression"]["test_accuracy"] > 0.7

    # Seeds follow names: the GRU trained alone on sklearn logs the same losses as beside the others.
    solo = tmp_path / "solo"
    mod.main(mod.Config(tiny=True, progress=False, root=str(solo), datasets=("sklearn",), cells=("gru",)))
    alone = _losses(solo / "sequential_images" / "metrics.jsonl", "sklearn/gru")
    assert len(alone) == 6
    np.testing.assert_allclose(alone, _losses(run_dir / "metrics.jsonl", "sklearn/gru"), rtol=1e-6)


def test_indrnn_is_built_and_trained_as_the_paper_says(load_script):
    """T is the image side: u drawn in [2^(-1/T), 2^(1/T)] (a last layer read at its last step), and every
    optimiser step ends with |u| <= 2^(1/T); the other cells are rj.cells.make's, their steps plain Adam."""
    mod = load_script("experiments", "sequential_images")
    cfg = mod.Config(hidden_size=128)
    side, bound = 28, 2.0 ** (1.0 / 28)
    cell = mod.make_cell(cfg, "indrnn", side)
    assert dict(cell.options) | {"input_init": None} == {
        "activation": "relu", "t_max": side, "gamma": 2.0, "long_memory": True, "input_init": None,
        "dtype": jnp.float32,
    }  # fmt: skip
    for name in ("rnn", "lstm", "gru", "ln_lstm", "lru", "mingru", "minlstm"):
        assert mod.make_cell(cfg, name, side) is rj.cells.make(name, cfg.hidden_size)
    u = rj.cells.indrnn(512, "relu", t_max=side, long_memory=True).init(jax.random.key(0), side).u
    assert 1 / bound <= float(u.min()) < 1 / bound + 0.01 and bound - 0.01 < float(u.max()) <= bound

    model = rj.models.ManyToOne(rj.RNN(cell=cell), output_size=10)
    params = model.init(jax.random.key(1), side)
    grads = jax.tree.map(lambda x: -jnp.ones_like(x), params)  # every u pushed up by Adam's first step (lr)

    def step(tx):
        updates, _ = tx.update(grads, tx.init(params), params)
        return optax.apply_updates(params, updates)

    constrained, plain = step(mod.optimizer(cfg, "indrnn", side)), step(mod.optimizer(cfg, "gru", side))
    u0, u, u_plain = params.rnn[0][0].u, constrained.rnn[0][0].u, plain.rnn[0][0].u
    over = u_plain > bound
    assert bool(over.any()) and bool((~over).any())
    np.testing.assert_allclose(u[over], np.float32(bound))
    np.testing.assert_array_equal(u[~over], u_plain[~over])
    assert float(u.max()) <= np.float32(bound) and bool((u > u0).all())
    for a, b in zip(jax.tree.leaves(constrained.head), jax.tree.leaves(plain.head), strict=True):
        np.testing.assert_array_equal(a, b)
