"""rj.runs and rj.models.to_config/from_config/init_args: a run folder read back whole, without the script."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rnnjax as rj
from rnnjax.checkpoint import CheckpointError, Checkpoints

TOKENS = np.array([[1, 2, 3, 4, 5], [5, 4, 3, 0, 0]], np.int32)
LENGTHS = np.array([5, 3], np.int32)
XS = np.linspace(-1, 1, 2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)


def _models() -> dict[str, tuple[object, tuple, dict]]:
    """One model of every class: ``{name: (model, init args, apply inputs)}``."""
    v = np.linspace(0, 1, 2 * 4, dtype=np.float32).reshape(2, 4)
    return {
        "RNN": (rj.RNN("gru", 4, num_layers=2, bidirectional=True), (3,), {"xs": XS, "lengths": LENGTHS}),
        "RNN learn_initial": (rj.RNN("lstm", 4, learn_initial=True), (3,), {"xs": XS}),
        "FeedForward": (rj.models.FeedForward((6,), 2), (15,), {"x": XS.reshape(2, -1)}),
        "ManyToOne": (rj.models.ManyToOne(rj.RNN("lstm", 4), output_size=2, pool="mean"), (3,), {"xs": XS}),
        "ManyToOne tokens": (rj.models.ManyToOne(rj.RNN("rnn", 4), output_size=2, vocab_size=7, embed_dim=3), (),
                             {"xs": TOKENS, "lengths": LENGTHS}),
        "ManyToMany": (rj.models.ManyToMany(rj.RNN("gru", 4, dropout=0.1, num_layers=2), output_size=3), (3,),
                       {"xs": XS}),
        "LanguageModel": (rj.models.LanguageModel(rj.RNN("lstm", 4), vocab_size=7, embed_dim=3), (),
                          {"tokens": TOKENS}),
        "OneToMany": (rj.models.OneToMany(rj.RNN("gru", 4), vocab_size=7, embed_dim=3, condition="both"), (4,),
                      {"v": v, "tokens": TOKENS}),
        "OneToMany input": (rj.models.OneToMany(rj.RNN("rnn", 4), vocab_size=7, embed_dim=3, condition="input"),
                            (4,), {"v": v, "tokens": TOKENS}),
        "Seq2Seq": (rj.models.Seq2Seq(rj.RNN("gru", 4, bidirectional=True), rj.RNN("gru", 5), src_vocab=7,
                                      tgt_vocab=6, embed_dim=3), (),
                    {"src": TOKENS, "src_lengths": LENGTHS, "tgt_in": TOKENS % 6}),
    }  # fmt: skip


@pytest.mark.parametrize("name", list(_models()))
def test_every_model_class_round_trips(name):
    model, args, inputs = _models()[name]
    config = rj.models.to_config(model)
    rebuilt = rj.models.from_config(json.loads(json.dumps(config)))  # through JSON, as model.json holds it
    assert type(rebuilt) is type(model) and rj.models.to_config(rebuilt) == config
    params = jax.eval_shape(lambda: model.init(jax.random.key(0), *args))  # shapes only: nothing to compute
    assert rj.models.init_args(model, params) == args
    again = jax.eval_shape(lambda: rebuilt.init(jax.random.key(0), *rj.models.init_args(rebuilt, params)))
    assert jax.tree.structure(again) == jax.tree.structure(params)
    assert jax.tree.map(lambda x: (x.shape, x.dtype), again) == jax.tree.map(lambda x: (x.shape, x.dtype), params)
    shapes = [jax.eval_shape(m.apply, params, **inputs) for m in (model, rebuilt)]
    assert jax.tree.structure(shapes[0]) == jax.tree.structure(shapes[1])


CELL_OPTIONS = {"lstm": {"forget_bias": 0.0}, "rnn": {"activation": "relu"}, "gru": {"reset_after": False},
                "indrnn": {"t_max": 10}, "lru": {"r_min": 0.5}}  # fmt: skip


@pytest.mark.parametrize("cell", list(rj.cells.CELLS))
def test_every_registered_cell_round_trips_with_its_options(cell):
    options = CELL_OPTIONS.get(cell, {})
    built = rj.cells.make(cell, 3, **options)
    models = []
    for c in (rj.cells.make(cell, 3), built):
        model = rj.models.ManyToMany(rj.RNN(cell=c), output_size=2)
        rebuilt = rj.models.from_config(json.loads(json.dumps(rj.models.to_config(model))))
        assert rebuilt.rnn.step_cell.options == c.options and rebuilt.rnn.step_cell.name == c.name
        models.append(rebuilt)
    assert (models[0].rnn.step_cell.options == built.options) == (not options)
    # The rebuilt cell with options is another object than the one built: it computes the same.
    model = rj.models.ManyToMany(rj.RNN(cell=built), output_size=2)
    params = model.init(jax.random.key(1), 3)
    ours, theirs = jax.jit(lambda p: (model.apply(p, XS), models[1].apply(p, XS)))(params)
    np.testing.assert_array_equal(ours, theirs)


def test_a_cell_outside_the_registry_cannot_be_saved():
    cell = rj.cells.rnn(3)
    foreign = cell._replace(spec=cell.spec._replace(name="my_cell"))
    with pytest.raises(ValueError, match="'my_cell' .* is not rebuilt by any factory of rj.cells.CELLS"):
        rj.models.to_config(rj.RNN(cell=foreign))
    with pytest.raises(ValueError, match="model: expected one of"):
        rj.models.to_config(object())
    with pytest.raises(ValueError, match="config: expected a model definition"):
        rj.models.from_config({"type": "Transformer"})


def test_init_args_refuses_params_of_another_model():
    model = rj.models.ManyToOne(rj.RNN("gru", 4), output_size=2)
    other = rj.models.ManyToOne(rj.RNN("gru", 5), output_size=2).init(jax.random.key(0), 3)
    with pytest.raises(ValueError, match="params: expected the params of ManyToOne.init"):
        rj.models.init_args(model, other)


def _save(run_dir, model, params, probe=None, steps=(3,)):
    """What fit(model=, probe=) leaves: the definition, the probe and checkpoints of the training state."""
    rj.runs.save_definition(run_dir, model, params, probe)
    tx = optax.adam(0.1)
    with Checkpoints(run_dir / "checkpoints") as checkpoints:
        for step in steps:
            shifted = jax.tree.map(lambda x, s=step: x + s, params)
            checkpoints.save(step, rj.train.TrainState.create(shifted, tx)._replace(step=jnp.asarray(step)), {"s": 1})


@pytest.mark.parametrize("name", ["RNN learn_initial", "OneToMany", "Seq2Seq"])
def test_load_run_rebuilds_model_params_and_probe(tmp_path, name):
    model, args, inputs = _models()[name]
    params = model.init(jax.random.key(2), *args)
    _save(tmp_path, model, params, inputs, steps=(3, 7))
    run = rj.runs.load_run(tmp_path)
    assert rj.models.to_config(run.model) == rj.models.to_config(model)
    assert (run.step, run.config, run.run_dir) == (7, {"s": 1}, tmp_path)
    for a, b in zip(jax.tree.leaves(run.params), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(a, b + 7)  # the latest checkpoint's params, not the initial ones
        assert a.dtype == b.dtype
    assert jax.tree.structure(run.params) == jax.tree.structure(params)
    assert sorted(run.probe) == sorted(inputs)
    for key, value in inputs.items():
        np.testing.assert_array_equal(run.probe[key], value)
    earlier = rj.runs.load_run(tmp_path, step=3)
    np.testing.assert_array_equal(jax.tree.leaves(earlier.params)[0], jax.tree.leaves(params)[0] + 3)


def test_fit_writes_what_load_run_reads(tmp_path):
    model = rj.models.ManyToOne(rj.RNN("rnn", 3), output_size=1)
    params = model.init(jax.random.key(0), 3)
    tx = optax.sgd(0.1)

    def loss(p, batch, key):
        return jnp.mean(model.apply(p, batch) ** 2), {}

    run_dir = tmp_path / "experiment" / "rnn"
    state, _ = rj.train.fit(rj.train.TrainState.create(params, tx), rj.train.make_train_step(loss, tx), lambda s: XS,
                            2, key=jax.random.key(0), run_dir=run_dir, model=model, probe={"xs": XS[:1]},
                            progress=False)  # fmt: skip
    run = rj.runs.load_run(run_dir)
    assert run.step == 2 and rj.runs.find_runs(tmp_path) == [run_dir]
    np.testing.assert_array_equal(run.model.apply(run.params, **run.probe), model.apply(state.params, XS[:1]))


def test_load_run_errors_name_what_is_missing(tmp_path):
    model, args, inputs = _models()["ManyToOne"]
    params = model.init(jax.random.key(0), *args)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="model.json: no model definition"):
        rj.runs.load_run(empty)
    _save(tmp_path / "exp" / "a", model, params)
    with pytest.raises(FileNotFoundError, match=r"the runs under it: \[.*exp/a'\]"):
        rj.runs.load_run(tmp_path / "exp")

    rj.runs.save_definition(tmp_path / "untrained", model, params)
    with pytest.raises(CheckpointError, match="no checkpoint in .*untrained/checkpoints"):
        rj.runs.load_run(tmp_path / "untrained")
    assert not (tmp_path / "untrained" / "checkpoints").exists()  # reading writes nothing
    rj.runlog.write_log(tmp_path / "untrained" / "metrics.jsonl", [{"step": 1, "diverged": "grad_norm = inf"}])
    with pytest.raises(CheckpointError, match=r"it diverged at step 1: grad_norm = inf, before its first save"):
        rj.runs.load_run(tmp_path / "untrained")

    other = rj.models.ManyToOne(rj.RNN("lstm", 5), output_size=2)
    _save(tmp_path / "mixed", other, other.init(jax.random.key(0), 3))
    rj.runs.save_definition(tmp_path / "mixed", model, params)  # a definition that the checkpoint does not fit
    with pytest.raises(CheckpointError, match=r"params.rnn\[0\]\[0\].* has shape \(20, 3\), the model's has \(16, 3\)"):
        rj.runs.load_run(tmp_path / "mixed")

    record = json.loads((tmp_path / "exp" / "a" / "model.json").read_text())
    record["model"]["rnn"]["cell"] = {"type": "Cell", "factory": "transformer", "hidden_size": 4, "options": {}}
    (tmp_path / "exp" / "a" / "model.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="a/model.json: not a model definition fit wrote .*got 'transformer'"):
        rj.runs.load_run(tmp_path / "exp" / "a")
    (tmp_path / "exp" / "a" / "model.json").write_text('{"model": {"type": "ManyToOne", ')  # a torn write
    with pytest.raises(ValueError, match=r"a/model.json: not a model definition fit wrote \(Expecting"):
        rj.runs.load_run(tmp_path / "exp" / "a")


def test_load_run_refuses_a_probe_that_is_missing_or_not_an_input_of_the_model(tmp_path):
    model, args, inputs = _models()["ManyToOne"]
    params = model.init(jax.random.key(0), *args)
    _save(tmp_path, model, params, inputs)
    np.savez(tmp_path / "probe.npz", xs=XS[..., :2])  # replaced by inputs of another size
    with pytest.raises(ValueError, match=r"probe.npz: probe: ManyToOne.apply\(params, \*\*probe\) fails"):
        rj.runs.load_run(tmp_path)
    (tmp_path / "probe.npz").unlink()
    with pytest.raises(FileNotFoundError, match="probe.npz: model.json names this probe, but the file is missing"):
        rj.runs.load_run(tmp_path)


def test_probes_are_checked_against_the_model(tmp_path):
    model, args, _ = _models()["ManyToOne"]
    params = model.init(jax.random.key(0), *args)
    with pytest.raises(ValueError, match="probe: expected a dict"):
        rj.runs.save_definition(tmp_path, model, params, XS)
    with pytest.raises(ValueError, match=r"probe: ManyToOne.apply\(params, \*\*probe\) fails"):
        rj.runs.save_definition(tmp_path, model, params, {"xs": XS[..., :2]})
    rj.runs.save_definition(tmp_path, model, params, {"xs": XS})
    rj.runs.save_definition(tmp_path, model, params)  # a later definition without a probe drops the old one
    assert not (tmp_path / "probe.npz").exists()
