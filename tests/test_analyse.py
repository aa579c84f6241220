"""python -m rnnjax.analyse: any run folder's model rebuilt, its networks driven by the probe, and the report."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rnnjax as rj
from rnnjax import analyse
from rnnjax.analyse import measures
from rnnjax.analyse.networks import limit, recurrent_networks
from rnnjax.checkpoint import Checkpoints
from rnnjax.models.layers import dense, last_outputs

ROOT = Path(__file__).resolve().parents[1]
TOKENS = np.array([[1, 2, 3, 4, 5], [5, 4, 3, 6, 6]], np.int32)
LENGTHS = np.array([5, 3], np.int32)
XS = np.linspace(-1, 1, 2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)
V = np.linspace(0, 1, 2 * 4, dtype=np.float32).reshape(2, 4)
FAST = ["--max-lag", "4", "--lag-points", "5", "--exponents", "3", "--warmup", "1", "--no-fixed-points"]
SECTIONS = ("## The model", "## What was analysed", "## Jacobian products", "## Singular values of the products",
            "## Lyapunov spectrum", "## How far back the gradient reaches", "## Environment", "## Config")  # fmt: skip
FIGURES = ("norms.png", "singular_values.png", "lyapunov.png", "gradient_reach.png")


def _gru(**options) -> rj.RNN:
    return rj.RNN("gru", 3, **options)  # one net for most models: the analysis compiles once for them


def _models() -> dict[str, tuple]:
    """``{name: (model, init args, probe)}``: every model class, small."""
    return {
        "many_to_one": (rj.models.ManyToOne(_gru(), output_size=2), (3,), {"xs": XS, "lengths": LENGTHS}),
        "many_to_many": (rj.models.ManyToMany(_gru(), output_size=2, vocab_size=7, embed_dim=3), (), {"xs": TOKENS}),
        "language_model": (rj.models.LanguageModel(_gru(), vocab_size=7, embed_dim=3), (), {"tokens": TOKENS}),
        "one_to_many": (rj.models.OneToMany(_gru(), vocab_size=7, embed_dim=3), (4,),
                        {"v": V, "tokens": TOKENS, "lengths": LENGTHS}),
        "seq2seq": (rj.models.Seq2Seq(_gru(), _gru(), src_vocab=7, tgt_vocab=7, embed_dim=3), (),
                    {"src": TOKENS, "src_lengths": LENGTHS, "tgt_in": TOKENS, "tgt_lengths": LENGTHS}),
        "rnn": (rj.RNN("rnn", 3, num_layers=2), (3,), {"xs": XS}),
        "mlp": (rj.models.FeedForward((4,), 2), (15,), {"x": XS.reshape(2, -1)}),
    }  # fmt: skip


def _save(run_dir: Path, model, args, probe, step: int = 2, log=None) -> None:
    """A run folder as fit(model=, probe=) leaves it (without training: the analysis reads only these)."""
    params = model.init(jax.random.key(0), *args)
    rj.runs.save_definition(run_dir, model, params, probe)
    with Checkpoints(run_dir / "checkpoints") as checkpoints:
        checkpoints.save(step, rj.train.TrainState.create(params, optax.sgd(0.1))._replace(step=jnp.asarray(step)))
    if log is not None:
        rj.runlog.write_log(run_dir / "metrics.jsonl", log)


def _heads(model, params, networks):
    """The model's output computed from what recurrent_networks says each network reads."""
    outs = [n.net.apply(n.params, n.xs, n.lengths, n.carry) for n in networks]
    if isinstance(model, rj.RNN):
        return outs[0]
    if isinstance(model, rj.models.ManyToOne):
        return dense(params.head, last_outputs(outs[0][0], networks[0].lengths, 1))
    if isinstance(model, rj.models.LanguageModel):
        return dense(params.head, outs[0][0]), outs[0][1]
    if isinstance(model, rj.models.Seq2Seq):
        return dense(params.head, outs[1][0])
    return dense(params.head, outs[0][0])


def test_the_networks_read_what_model_apply_feeds_them():
    models = _models()
    for name in ("many_to_one", "language_model", "rnn", "mlp"):
        model, args, probe = models[name]
        networks = recurrent_networks(model, model.init(jax.random.key(0), *args), probe)
        assert [n.name for n in networks] == {"rnn": ["network"], "mlp": []}.get(name, ["rnn"])
        if networks:
            assert networks[0].xs.shape == (2, 5, 3) and networks[0].carry is None
    assert networks == []  # a FeedForward's
    model, args, probe = models["many_to_many"]
    params = model.init(jax.random.key(0), *args)
    np.testing.assert_array_equal(recurrent_networks(model, params, probe)[0].xs, params.E[TOKENS])
    models = {  # the condition beside each token and in the carry (an LSTM's, two leaves); a bidirectional encoder
        "one_to_many": (rj.models.OneToMany(rj.RNN("lstm", 3), vocab_size=7, embed_dim=2, condition="both"), (4,),
                        {"v": V, "tokens": TOKENS}),
        "seq2seq": (rj.models.Seq2Seq(_gru(bidirectional=True), _gru(), src_vocab=7, tgt_vocab=7, embed_dim=3), (),
                    {"src": TOKENS, "src_lengths": LENGTHS, "tgt_in": TOKENS, "tgt_lengths": np.array([4, 5])}),
    }  # fmt: skip
    for name, (model, args, probe) in models.items():
        params = model.init(jax.random.key(0), *args)
        networks = recurrent_networks(model, params, probe)
        assert [n.name for n in networks] == {"seq2seq": ["encoder", "decoder"]}.get(name, ["rnn"])
        ours, theirs = jax.jit(lambda p, m=model, a=probe: (_heads(m, p, recurrent_networks(m, p, a)),
                                                            m.apply(p, **a)))(params)  # fmt: skip
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=name)
    model, args, probe = _models()["seq2seq"]
    params = model.init(jax.random.key(0), *args)
    with pytest.raises(ValueError, match=r"probe: expected the input 'tgt_in' of Seq2Seq.apply"):
        recurrent_networks(model, params, {"src": TOKENS})


def test_limit_keeps_the_sequences_with_steps_and_cuts_them():
    model, args, probe = _models()["many_to_one"]
    params = model.init(jax.random.key(0), *args)
    (network,) = recurrent_networks(model, params, {"xs": XS, "lengths": np.array([0, 4])})
    cut, note = limit(network, 4, 3)
    np.testing.assert_array_equal(cut.xs, XS[1:, :3])
    assert cut.lengths is None and note == "1 of the probe's 2 sequences, each cut to its first 3 steps (of up to 4)"
    same, note = limit(network, 4, 10)
    assert same.xs.shape == (1, 4, 3) and note == "1 of the probe's 2 sequences"
    with pytest.raises(ValueError, match="expected a probe sequence with at least one step"):
        limit(network._replace(lengths=jnp.zeros(2, jnp.int32)), 4, 3)

    # The memory bound: (steps + 2 lags + 1 + lag points) n^2 floats a sequence, here 65 n^2 of 64 n^2 (1 MiB).
    big = rj.RNN("gru", 64)
    (network,) = recurrent_networks(big, big.init(jax.random.key(0), 3), {"xs": XS})
    cut, note = analyse.bound(network, 64, analyse.Config(".", max_lag=4, max_jacobian_mb=1))
    assert cut.xs.shape == (1, 4, 3) and note.endswith("(--max-jacobian-mb 1 for a state of 64)")
    cut, note = analyse.bound(network, 64, analyse.Config(".", max_lag=4, max_jacobian_mb=3))  # 2 sequences fit
    assert cut.xs.shape == (2, 5, 3) and note == ""


def test_measurements_equal_the_analysis_functions_on_each_sequence(x64):
    """Counted back from each sequence's own end: the products, exponents and gradients of the library's
    functions on that sequence alone, cut to its length."""
    net = rj.RNN(rj.cells.gru(3, dtype=jnp.float64), bidirectional=True)
    params = net.init(jax.random.key(3), 3)
    xs = jnp.asarray(XS, jnp.float64)
    network = recurrent_networks(net, params, {"xs": xs, "lengths": LENGTHS})[0]
    settings = measures.Settings(max_lag=4, lag_points=5, exponents=2, warmup=1, fixed_points=False)
    got = measures.measure(network, 0, 1, settings)
    assert got.label == "network, backward" and got.cell == "gru" and got.fixed.startswith("not asked")
    np.testing.assert_array_equal(got.lags, np.arange(5))
    u = jax.random.normal(jax.random.key(0), (net.output_size,), xs.dtype)
    u = u / jnp.linalg.norm(u)
    longer = None
    where = dict(layer=0, direction=1)

    def loss(ys, finals):
        return jnp.sum(last_outputs(ys, None, 2) @ u)

    @jax.jit
    def reference(one):  # the library's functions on one sequence, cut to its length
        jac = rj.analysis.step_jacobians(net, params, one, **where)
        products = rj.analysis.jacobian_products(jac)
        return (rj.analysis.norms_by_lag(jac, warn=False).norms[0], products[0],
                rj.analysis.lyapunov_spectrum(net, params, one, k=2, warmup=1, **where)[0],
                rj.analysis.state_gradients(net, params, one, loss, **where)[0])  # fmt: skip

    for b, L in enumerate(LENGTHS):
        norms, products, exponents, grads = reference(xs[b : b + 1, :L])
        np.testing.assert_allclose(got.norms[b, : L + 1], norms[:5], rtol=1e-9)
        assert np.isnan(got.norms[b, L + 1 :]).all()
        np.testing.assert_allclose(got.lyapunov[b], exponents, rtol=1e-9)
        np.testing.assert_allclose(got.spectra[2][b], np.linalg.svd(products[L - 2], compute_uv=False), rtol=1e-9)
        norms = np.linalg.norm(np.asarray(grads)[::-1], axis=-1)  # from the last step the direction runs
        assert np.isfinite(got.reach).all()
        if b == 1:  # the shorter sequence: lags beyond its length are the longer one's alone
            np.testing.assert_allclose(got.reach[L:], longer[L:5], rtol=1e-9)
        else:
            longer = norms
    np.testing.assert_allclose(got.reach[:3], (longer[:3] + norms[:3]) / 2, rtol=1e-9)
    assert {name: g.bounds for name, g in got.gates.items()} == {"n": "[-1, 1]", "r": "[0, 1]", "z": "[0, 1]"}
    assert got.gates["z"].mean == pytest.approx(float(np.mean(got.gates["z"].values)))


def test_an_experiment_folder_gets_an_index_and_every_model_a_report(tmp_path, monkeypatch):
    folder = tmp_path / "experiment"
    log = [{"step": s, "loss": 1.0 / s, "lyapunov/1": -0.1 * s, "lyapunov/2": -0.3 * s} for s in (1, 2, 3)]
    for name, (model, args, probe) in _models().items():
        _save(folder / name, model, args, probe, log=log if name == "many_to_one" else None)
    zoned = rj.models.ManyToOne(rj.RNN("gru", 3, zoneout=0.1), output_size=2)
    _save(folder / "zoneout", zoned, (3,), {"xs": XS})
    model, args, _ = _models()["rnn"]
    rj.runs.save_definition(folder / "diverged", model, model.init(jax.random.key(0), *args))  # no checkpoint
    monkeypatch.chdir(tmp_path)
    analyse.main(["experiment", *FAST])

    index = (folder / "analysis" / "index.md").read_text()
    rows = rj.experiment.table_cells(rj.experiment.tables_in(index)[0])
    assert set(rows) == {*_models(), "zoneout", "diverged"}
    assert "8 of 9 models analysed" in index
    assert rows["diverged"]["report"].startswith("not analysed: no checkpoint in")
    assert rows["mlp"]["report"].endswith("not analysed: a FeedForward has no recurrent network")
    for name in ("many_to_one", "many_to_many", "language_model", "one_to_many", "seq2seq", "rnn"):
        assert rows[name]["report"] == f"[report]({name}/report.md)", name
        report = (folder / "analysis" / name / "report.md").read_text()
        for section in SECTIONS:
            assert section in report, (name, section)
        for figure in FIGURES:
            assert (folder / "analysis" / name / figure).stat().st_size > 0 and f"]({figure})" in report
        assert "## Not analysed" not in report
    seq2seq = (folder / "analysis" / "seq2seq" / "report.md").read_text()
    for label in ("encoder", "decoder"):
        assert f"| {label} |" in seq2seq
    assert "| network, layer 1 |" in (folder / "analysis" / "rnn" / "report.md").read_text()
    assert "## Gates" in seq2seq and "| decoder | z | [0, 1] |" in seq2seq
    assert "## Gates" not in (folder / "analysis" / "rnn" / "report.md").read_text()
    trained = (folder / "analysis" / "many_to_one" / "report.md").read_text()
    assert "## Lyapunov exponents during training" in trained
    assert "| lyapunov/2 | 1 | -0.3000 | 3 | -0.9000 |" in trained
    assert (folder / "analysis" / "many_to_one" / "training_lyapunov.png").stat().st_size > 0
    zoneout = (folder / "analysis" / "zoneout" / "report.md").read_text()
    assert "## Not analysed\n\n- rnn: net: expected a net whose step is its cell's, got zoneout=0.1" in zoneout
    assert rows["zoneout"]["largest Lyapunov exponent"] == "n/a"
    assert re.fullmatch(r"encoder: -?\d+\.\d{4}; decoder: -?\d+\.\d{4}", rows["seq2seq"]["largest Lyapunov exponent"])


def test_fixed_points_of_small_states(tmp_path, monkeypatch):
    model, args, probe = _models()["many_to_one"]
    _save(tmp_path / "run", model, args, probe)
    settings = ["--max-lag", "3", "--exponents", "1", "--fixed-point-starts", "8", "--fixed-point-steps", "200"]
    (network,) = recurrent_networks(model, model.init(jax.random.key(0), *args), probe)
    states = jnp.zeros((2, 6, 3))
    off = measures.Settings(fixed_points=False)
    assert measures._fixed_points(network, 0, 0, states, off) == "not asked for (--no-fixed-points)"
    small = measures.Settings(max_fixed_point_state=2)
    assert measures._fixed_points(network, 0, 0, states, small).startswith("skipped: a state of 3 entries")
    monkeypatch.setitem(sys.modules, "rnnjax.analysis.fixed_points", None)  # as if the module were not installed
    missing = measures._fixed_points(network, 0, 0, states, measures.Settings())
    assert missing == "skipped: rnnjax.analysis.fixed_points is not installed"
    monkeypatch.undo()
    pytest.importorskip("rnnjax.analysis.fixed_points")
    analyse.main([str(tmp_path / "run"), "--out", str(tmp_path / "with"), *settings])
    text = (tmp_path / "with" / "report.md").read_text()
    row = rj.experiment.table_cells(rj.experiment.tables_in(text.split("## Fixed points")[1])[0])["rnn"]
    assert re.fullmatch(r"\d of 8 starts below q = \S+ in \d+ Adam steps", row["search"])
    assert int(row["fixed points"]) >= 1
    assert int(row["stable"]) + int(row["saddles"]) + int(row["more unstable"]) == int(row["fixed points"])
    assert (tmp_path / "with" / "fixed_points.png").stat().st_size > 0
    assert (tmp_path / "with" / "fixed_points_0.png").stat().st_size > 0 and "](fixed_points_0.png)" in text


def test_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match=r"^error: .*empty: no model.json in it or under it"):
        analyse.main([str(tmp_path / "empty")])
    with pytest.raises(SystemExit, match=r"^error: .*nowhere: no such folder$"):
        analyse.main([str(tmp_path / "nowhere")])
    (tmp_path / "report.md").write_text("a file")
    with pytest.raises(SystemExit, match=r"^error: .*report.md: a file, not a run folder$"):
        analyse.main([str(tmp_path / "report.md")])
    with pytest.raises(SystemExit, match=r"^error: --max-lag: expected an int >= 1, got 0$"):
        analyse.main([str(tmp_path / "empty"), "--max-lag", "0"])
    model, args, probe = _models()["rnn"]
    rj.runs.save_definition(tmp_path / "untrained", model, model.init(jax.random.key(0), *args), probe)
    with pytest.raises(SystemExit, match=r"^error: no checkpoint in .*untrained/checkpoints: the run saved none"):
        analyse.main([str(tmp_path / "untrained")])
    with pytest.raises(SystemExit, match=r"^error: .*: none of its 1 models could be analysed; the first: not an"):
        analyse.main([str(tmp_path)])


def test_the_command_line_from_another_directory(tmp_path):
    """A tiny fit with model= and probe=, analysed by a new user's command in another folder."""
    model = rj.models.ManyToOne(rj.RNN("lstm", 3), output_size=1)
    tx = optax.adam(1e-2)

    def loss(p, batch, key):
        return jnp.mean((model.apply(p, batch) - 1.0) ** 2), {}

    run_dir = tmp_path / "runs" / "tiny"
    rj.train.fit(rj.train.TrainState.create(model.init(jax.random.key(0), 3), tx), rj.train.make_train_step(loss, tx),
                 lambda s: XS, 3, key=jax.random.key(1), run_dir=run_dir, model=model, probe={"xs": XS},
                 progress=False)  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "rnnjax.analyse", str(run_dir), *FAST], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {run_dir / 'analysis' / 'report.md'}"
    report = (run_dir / "analysis" / "report.md").read_text()
    for section in (*SECTIONS, "## Gates"):
        assert section in report, section
    for figure in (*FIGURES, "gates.png"):
        assert (run_dir / "analysis" / figure).stat().st_size > 0
    assert "a `ManyToOne` at the checkpoint of step 3" in report and '"cell": "lstm"' in report
    assert list(elsewhere.iterdir()) == []  # nothing written where it ran

    failed = subprocess.run([sys.executable, "-m", "rnnjax.analyse", str(elsewhere)], cwd=elsewhere, env=env,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert failed.stderr.strip().splitlines() == [f"error: {elsewhere}: no model.json in it or under it (a run folder "
                                                  "written by fit(..., run_dir=..., model=...))"]  # fmt: skip


def test_the_console_script_is_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, name = scripts["rnnjax-analyse"].split(":")
    assert getattr(__import__(module, fromlist=[name]), name) is analyse.main
    with pytest.raises(SystemExit):  # tyro prints the usage
        analyse.main(["--help"])
    cfg = rj.experiment.parse_config(analyse.Config, ["runs/x", "--max-lag", "7", "--no-fixed-points"])
    assert (cfg.run_dir, cfg.max_lag, cfg.fixed_points, cfg.out) == ("runs/x", 7, False, None)
