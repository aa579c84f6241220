"""experiments/char_lm.py in its tiny configuration: the run folder, the report and values that could be wrong."""

from __future__ import annotations

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rnnjax as rj


def test_char_lm_tiny(load_script, tmp_path):
    """One tiny run (its JIT compilations are most of its time), checked part by part."""
    script = load_script("experiments", "char_lm")
    run = script, script.main(script.Config(tiny=True, progress=False, root=str(tmp_path)))
    check_run_folder_and_report(run)
    check_metrics_hold_every_cell_and_the_validation(run)
    check_baselines_score_the_held_out_rows(run)
    check_samples_and_continuation(run)


def check_run_folder_and_report(run):
    script, out = run
    run_dir = out["run_dir"]
    for name in ("config.json", "metrics.jsonl", "learning_curves.png", "report.md"):
        assert (run_dir / name).stat().st_size > 0, name
    report = (run_dir / "report.md").read_text()
    assert "![learning curves](learning_curves.png)" in report and out["table"] in report
    (headline,) = rj.experiment.headlines_in(report)
    cells = {r["cell"]: r for r in out["results"]}
    assert headline["best model"] in cells and headline["best baseline"] in out["baselines"]
    best = min(cells.values(), key=lambda r: r["test_bpc"])
    assert float(headline["score"]) == pytest.approx(best["test_bpc"], rel=1e-3)
    assert float(headline["baseline score"]) == pytest.approx(min(b["test"] for b in out["baselines"].values()), 1e-3)
    table = rj.experiment.table_cells(out["table"])
    assert set(table) == {*script.Config.cells, "unigram", "Kneser-Ney 3-gram", "Kneser-Ney 5-gram"}
    assert {"rnn", "lstm", "gru", "mingru", "minlstm", "lru", "indrnn"} <= set(script.Config.cells)


def check_metrics_hold_every_cell_and_the_validation(run):
    script, out = run
    records = [json.loads(line) for line in (out["run_dir"] / "metrics.jsonl").read_text().splitlines()]
    tiny = script.TINY
    for r in out["results"]:
        mine = [x for x in records if x["cell"] == r["cell"]]
        assert [x["step"] for x in mine if "loss" in x][-1] == tiny["steps"]
        evals = [x["eval/bpc"] for x in mine if "eval/bpc" in x]
        assert evals and evals[-1] == pytest.approx(r["valid_bpc"])
        steps, bpc = r["train"]
        assert len(bpc) == tiny["steps"]
        # an untrained model over 79 characters costs about log2(79) = 6.3 bits a character
        for value in (r["train_bpc"], r["valid_bpc"], r["test_bpc"]):
            assert abs(value - math.log2(79)) < 1.0


def check_baselines_score_the_held_out_rows(run):
    script, out = run
    base = out["baselines"]
    for part in ("valid", "test"):
        assert base["Kneser-Ney 5-gram"][part] < base["Kneser-Ney 3-gram"][part] < base["unigram"][part]
    # the unigram's score, computed independently from the same rows of the same split
    corpus = rj.data.shakespeare.corpus(0)
    tiny = script.TINY
    counts = np.bincount(corpus.train[: tiny["train_chars"]], minlength=79) + 1.0
    rows = script.held_out_rows(corpus.valid, tiny["eval_rows"], tiny["eval_len"])
    assert rows.shape == (tiny["eval_rows"], tiny["eval_len"] + 1)
    expected = -np.log2(counts[rows[:, 1:]] / counts.sum()).mean()
    assert base["unigram"]["valid"] == pytest.approx(expected)


def check_samples_and_continuation(run):
    script, out = run
    tiny = script.TINY
    chars = set(rj.data.shakespeare.vocab().chars)
    assert [t for t, _ in out["samples"]] == list(tiny["temperatures"])
    for _, text in out["samples"]:
        assert len(text) == tiny["sample_chars"] and set(text) <= chars
    prompt, continued, truth = out["continuation"]
    assert len(prompt) == tiny["prompt_chars"] and len(continued) == len(truth) == tiny["sample_chars"]
    test_text = rj.data.shakespeare.vocab().decode(rj.data.shakespeare.corpus(0).test)
    assert prompt + truth in test_text


def test_cells_are_built_with_their_published_options(load_script):
    """What Config.cells documents: the IndRNN's T is the window, the LSTMs' forget bias 1, the rest defaults."""
    script = load_script("experiments", "char_lm")
    cfg = script.Config(seq_len=50, hidden_size=16)
    options = {c: dict(script.make_model(cfg, c, 79).rnn.step_cell.options) for c in (*cfg.cells, "ln_lstm")}
    assert options["indrnn"] | {"input_init": None} == {
        "activation": "relu", "t_max": 50, "gamma": 2.0, "long_memory": False, "input_init": None,
        "dtype": jnp.float32,
    }  # fmt: skip
    assert options["lstm"]["forget_bias"] == options["ln_lstm"]["forget_bias"] == 1.0
    assert options["ln_lstm"]["eps"] == 1e-5
    assert options["mingru"]["positive"] and options["minlstm"]["positive"]
    assert (options["lru"]["r_min"], options["lru"]["r_max"], options["lru"]["state_size"]) == (0.0, 1.0, 16)
    with pytest.raises(ValueError, match="cells: expected names among"):
        script.make_model(cfg, "transformer", 79)


def test_indrnn_steps_end_inside_the_papers_bound(load_script):
    """After every optimiser step |u| <= 2^(1/seq_len) (projected gradient descent); nothing else changes."""
    script = load_script("experiments", "char_lm")
    cfg = dataclasses.replace(script.Config(), **script.TINY)
    bound = 2.0 ** (1.0 / cfg.seq_len)
    params = script.make_model(cfg, "indrnn", 79).init(jax.random.key(0))
    cell = params.rnn[0][0]
    near = jnp.linspace(-bound, bound, cell.u.size).astype(cell.u.dtype)  # both ends at the bound
    params = params._replace(rnn=((cell._replace(u=near),),))
    grads = jax.tree.map(jnp.ones_like, params)
    grads = grads._replace(rnn=((grads.rnn[0][0]._replace(u=jnp.sign(near) * -1.0),),))  # push |u| outwards

    def step(tx):
        updates, _ = tx.update(grads, tx.init(params), params)
        return optax.apply_updates(params, updates)

    constrained, plain = step(script.optimizer(cfg, "indrnn")), step(script.optimizer(cfg, "gru"))
    u, u_plain = constrained.rnn[0][0].u, plain.rnn[0][0].u
    assert float(jnp.max(jnp.abs(u_plain))) > bound  # the plain step leaves the bound ...
    assert float(jnp.max(jnp.abs(u))) <= np.float32(bound)  # ... the IndRNN's is clipped back to it
    inside = jnp.abs(u_plain) <= bound
    np.testing.assert_array_equal(u[inside], u_plain[inside])
    np.testing.assert_allclose(jnp.abs(u[~inside]), np.float32(bound))
    for a, b in zip(jax.tree.leaves(constrained._replace(rnn=None)), jax.tree.leaves(plain._replace(rnn=None))):
        np.testing.assert_array_equal(a, b)


def test_verdict_names_who_is_behind_and_why(load_script):
    """The verdict's sentences follow the table: who is behind the best baseline, and the notes that apply."""
    script = load_script("experiments", "char_lm")
    cfg = script.Config()
    scores = {"gru": 2.2, "lstm": 2.35, "rnn": 2.4, "mingru": 2.6, "lru": 2.9, "indrnn": 2.31}
    results = [{"cell": c, "test_bpc": v} for c, v in scores.items()]

    def verdict(names):
        rows = [r for r in results if r["cell"] in names]
        headline = rj.experiment.Headline.best("t", "bpc", {r["cell"]: r["test_bpc"] for r in rows}, {"5-gram": 2.3})
        return script.verdict_of(cfg, headline, rows, 4_335_682)

    text = verdict(scores)
    assert "The best network, gru, scores 2.200" in text and "by 0.100 bits per character" in text
    assert "Behind 5-gram: lstm (2.350), rnn (2.400), mingru (2.600), lru (2.900), indrnn (2.310)." in text
    assert "6.4 million characters (1.48 passes" in text and "for the tanh RNN, gates" in text
    assert "each unit of minGRU, the LRU and the IndRNN evolves on its own" in text and "LRU's layer" in text
    text = verdict({"gru", "lstm"})
    assert "Behind 5-gram: lstm (2.350)." in text and "tanh RNN" not in text and "evolves on its own" not in text
    assert "Behind" not in verdict({"gru"})
    text = verdict({"mingru", "rnn"})
    assert "no network beats 5-gram" in text and "each unit of minGRU evolves" in text and "LRU" not in text
