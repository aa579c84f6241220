"""experiments/temporal_order.py in its tiny configuration: the run folder, the success table against the seeds'
test errors, the Classic rows, and every seed's folder read back by rj.runs.load_run with the params it was
judged by; the vmapped step against one network's step, and Pascanu et al.'s initialisations."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax as rj
from rnnjax.data.temporal_order import temporal_order


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNJAX_RUNS", str(tmp_path))
    return tmp_path


@pytest.fixture
def mod(load_script):
    return load_script("experiments", "temporal_order")


def test_temporal_order_tiny(runs, mod):
    out = mod.main(mod.Config(tiny=True, progress=False, name="tiny", cells=("rnn", "lstm")))
    cfg = mod.dataclasses.replace(mod.Config(cells=("rnn", "lstm")), **mod.TINY)
    run = runs / "tiny"
    for name in ["config.json", "metrics.jsonl", "report.md", "results.json", "success.png", "accuracy.png"]:
        assert (run / name).stat().st_size > 0, name
    assert (run / "loss_T20.png").stat().st_size > 0
    groups = {(g["cell"], g["clip"], g["T"]): g for g in out["groups"]}
    assert set(groups) == {(c, k, 20) for c in cfg.cells for k in ("1", "none")}
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {r["group"] for r in records} == {f"{c}/clip={k}/T=20" for c, k, _ in groups}

    # The success table: a row per cell and clipping, solved seeds = those under 1% test error.
    report = (run / "report.md").read_text()
    table = rj.experiment.table_cells(out["table"])
    assert out["table"] in report and list(table) == [
        "rnn, clip 1",
        "rnn, clip none",
        "lstm, clip 1",
        "lstm, clip none",
    ]
    for (cell, clip, T), g in groups.items():
        solved = sum(r["test_error"] < cfg.threshold for r in g["seeds"])
        assert g["solved"] == solved and table[f"{cell}, clip {clip}"][f"T = {T}"] == f"{solved}/{cfg.seeds}"
        assert g["steps"] == (cfg.rnn_steps if cell == "rnn" else cfg.gated_steps)
    env, config = rj.experiment.report_facts(report)
    assert float(env["wall_time_s"]) > 0 and config["tiny"] and config["cells"] == ["rnn", "lstm"]

    # The Classic rows: Pascanu et al. (the tanh RNN with and without clipping), Hochreiter & Schmidhuber (LSTM).
    classics = rj.experiment.classics_in(report)
    assert [c["source"].split(",")[0] for c in classics] == ["Pascanu", "Hochreiter & Schmidhuber 1997"]
    rnn_c, rnn_n = groups["rnn", "1", 20], groups["rnn", "none", 20]
    assert classics[0]["ours"] == f"T = 20: {rnn_c['solved']}/2 clipped, {rnn_n['solved']}/2 unclipped"
    assert "5M updates" in classics[0]["published"] and "31,390" in classics[1]["published"]
    assert all(c["agrees"] in ("yes", "partly", "no") for c in classics)
    if rnn_c["solved"] == rnn_n["solved"] == 0:
        assert classics[0]["agrees"] == "no" and "At T = 20 no seed left chance" in classics[0]["note"]

    # Every seed's folder reads back whole, with the params its test error was measured with.
    found = rj.runs.find_runs(run)
    assert len(found) == len(groups) * cfg.seeds
    for (cell, clip, T), g in groups.items():
        for row in g["seeds"]:
            loaded = rj.runs.load_run(run / cell / f"clip={clip}" / f"T={T}" / f"seed={row['seed']}")
            assert loaded.step == (row["stopped_at"] or g["steps"])
            assert loaded.model.apply(loaded.params, **loaded.probe).shape == (8, mod.CLASSES)
            key = rj.experiment.key_for(jax.random.key(cfg.seed), f"{cell}/clip={clip}/T={T}/seed={row['seed']}")
            rng = mod.seed_rng(key, mod.TEST)  # the test set: chunks of eval_size drawn in turn from its stream
            xs, labels = map(
                np.concatenate, zip(*[temporal_order(rng, cfg.eval_size, T) for _ in range(2)], strict=True)
            )
            assert len(labels) == cfg.test_size
            wrong = np.argmax(loaded.model.apply(loaded.params, xs), -1) != labels
            assert wrong.mean() == pytest.approx(row["test_error"])
            log = (loaded.run_dir / "metrics.jsonl").read_text().splitlines()
            assert {"step", "loss", "grad_norm", "skipped"} <= set(json.loads(log[0]))


def test_vmapped_step_is_each_network_step(mod, getkey):
    """Two seeds stepped together under vmap move exactly as each one stepped alone, and a seed whose loss is
    not finite keeps its params while the other moves on."""
    cfg = mod.Config(hidden_size=6)
    model = mod.make_model("rnn", cfg, 12)
    tx = rj.train.optimizer("sgd", 0.1, clip_norm=1.0)

    def loss_fn(p, batch, key):
        xs, labels = batch
        return rj.losses.cross_entropy(model.apply(p, xs), labels), {}

    one = rj.train.make_train_step(loss_fn, tx)
    draw = jax.jit(lambda k1, k2: mod.pascanu_init(model.init(k1, mod.INPUTS), k2, "basic_tanh"))
    params = [draw(getkey(), getkey()) for _ in range(2)]
    batches = [temporal_order(np.random.default_rng(s), 5, 12) for s in range(2)]
    stacked = mod._stack(params)
    state = rj.train.TrainState(jnp.zeros((), jnp.int32), stacked, jax.vmap(tx.init)(stacked))
    batch = tuple(np.stack(b) for b in zip(*batches, strict=True))
    step, single = jax.jit(mod.vmapped_step(one, 2)), jax.jit(one)
    new, metrics = step(state, batch, getkey())
    for s in range(2):
        alone, m = single(rj.train.TrainState.create(params[s], tx), batches[s], None)
        for a, b in zip(jax.tree.leaves(alone.params), jax.tree.leaves(mod._slice(new.params, s)), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
        assert float(metrics[f"loss/{s}"]) == pytest.approx(float(m["loss"]), rel=1e-5)
    assert int(new.step) == 1 and int(metrics["skipped"]) == 0

    xs = batch[0].copy()
    xs[1, 0, 0, 0] = np.nan  # seed 1 sees a NaN: its update is skipped, seed 0's is not
    new, metrics = step(state, (xs, batch[1]), getkey())
    assert int(metrics["skipped/1"]) == 1 and int(metrics["skipped/0"]) == 0 and np.isfinite(float(metrics["loss"]))
    for a, b in zip(jax.tree.leaves(mod._slice(new.params, 1)), jax.tree.leaves(params[1]), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(mod._slice(new.params, 0).rnn[0][0].W, params[0].rnn[0][0].W)


def test_pascanu_initialisations(mod, getkey):
    cfg = mod.Config(hidden_size=100)
    model = mod.make_model("rnn", cfg, 50)
    draw = jax.jit(lambda k1, k2, init: mod.pascanu_init(model.init(k1, mod.INPUTS), k2, init), static_argnums=2)
    basic = jax.device_get(draw(getkey(), getkey(), "basic_tanh"))
    cell = basic.rnn[0][0]
    for x in (cell.U, cell.W, basic.head.V):  # N(0, 0.1^2): the sample std within 5 of its standard errors
        assert float(np.std(x)) == pytest.approx(0.1, rel=5 / np.sqrt(2 * x.size))  # glorot's would be >= 35% off
        assert abs(float(np.mean(x))) < 5 * 0.1 / np.sqrt(x.size)
    assert not cell.b.any() and not basic.head.c.any()
    smart = jax.device_get(mod.spectral_radius_to(draw(getkey(), getkey(), "smart_tanh")))
    W = np.asarray(smart.rnn[0][0].W, np.float64)
    assert ((W != 0).sum(axis=1) == 15).all()  # 15 incoming connections per unit
    assert np.abs(np.linalg.eigvals(W)).max() == pytest.approx(0.95, rel=1e-5)
    assert float(np.std(smart.rnn[0][0].U)) == pytest.approx(0.01, rel=5 / np.sqrt(2 * 600))
    with pytest.raises(ValueError, match="rnn_init"):
        mod.pascanu_init(basic, getkey(), "orthogonal")


def test_a_group_whose_seeds_all_stop_ends_there_and_the_next_group_trains(runs, mod):
    """Every seed under the threshold at the first validation: fit stops at that step (not at the budget), each
    seed's folder holds the params of that step, and the next group starts and trains as usual."""
    cfg = mod.dataclasses.replace(mod.Config(progress=False), **mod.TINY, threshold=1.01)  # every error is < 1.01
    first = mod.train_group(cfg, "lstm", 1.0, 20, runs)
    assert [r["stopped_at"] for r in first["seeds"]] == [cfg.eval_every] * cfg.seeds
    log = [json.loads(line) for line in (runs / "lstm/clip=1/T=20/metrics.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == cfg.eval_every < cfg.gated_steps
    for s in range(cfg.seeds):
        assert rj.runs.load_run(runs / f"lstm/clip=1/T=20/seed={s}").step == cfg.eval_every
    second = mod.train_group(dataclasses.replace(cfg, threshold=0.0), "gru", None, 20, runs)
    assert all(r["stopped_at"] is None for r in second["seeds"])
    log = (runs / "gru/clip=none/T=20/metrics.jsonl").read_text().splitlines()
    assert json.loads(log[-1])["step"] == cfg.gated_steps
